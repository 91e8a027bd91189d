/**
 * Coordinate-wise median (Yin et al. 2018): each weight moves by the median of the envoys' deltas for it.
 * Unweighted: a hostile envoy cannot buy influence with a large example count, and as long as fewer than
 * half the updates are hostile, the median stays within the range of honest values.
 */
import type { FlatWeights } from '../../core/weights.ts';
import type { AggregationStrategy, ClientUpdate } from './strategy.ts';
import { checkLengths } from './strategy.ts';

export class CoordinateMedian implements AggregationStrategy {
  readonly name = 'median';

  aggregate(global: FlatWeights, updates: ClientUpdate[]): FlatWeights {
    if (!updates.length) throw new Error('the median needs at least one update');
    checkLengths(global, updates);
    const median = coordinateMedian(updates.map((u) => u.delta.values));
    const values = new Float32Array(global.values.length);
    for (let i = 0; i < values.length; i++) values[i] = global.values[i] + median[i];
    return { manifest: global.manifest, values };
  }
}

/** The median of each coordinate over the vectors (the mean of the middle two for an even count). */
export function coordinateMedian(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0].length);
  const column = new Float64Array(vectors.length);
  for (let i = 0; i < out.length; i++) {
    for (let v = 0; v < vectors.length; v++) column[v] = vectors[v][i];
    column.sort();
    const m = column.length >> 1;
    out[i] = column.length % 2 ? column[m] : (column[m - 1] + column[m]) / 2;
  }
  return out;
}
