/**
 * Coordinate-wise trimmed mean (Yin et al. 2018): for each weight, drop the largest and smallest
 * `trim_fraction` of the envoys' deltas and average the rest. Unweighted, like the median, and closer to
 * FedAvg when nobody is hostile.
 */
import type { FlatWeights } from '../../core/weights.ts';
import type { AggregationStrategy, ClientUpdate } from './strategy.ts';
import { checkLengths } from './strategy.ts';

export class TrimmedMean implements AggregationStrategy {
  readonly name = 'trimmed_mean';

  constructor(private readonly trimFraction: number) {}

  aggregate(global: FlatWeights, updates: ClientUpdate[]): FlatWeights {
    if (!updates.length) throw new Error('the trimmed mean needs at least one update');
    checkLengths(global, updates);
    const n = updates.length;
    // Never trim everything: with few updates, keep at least the middle one.
    const cut = Math.min(Math.floor(n * this.trimFraction), Math.floor((n - 1) / 2));
    const column = new Float64Array(n);
    const values = new Float32Array(global.values.length);
    for (let i = 0; i < values.length; i++) {
      for (let u = 0; u < n; u++) column[u] = updates[u].delta.values[i];
      column.sort();
      let sum = 0;
      for (let k = cut; k < n - cut; k++) sum += column[k];
      values[i] = global.values[i] + sum / (n - 2 * cut);
    }
    return { manifest: global.manifest, values };
  }
}
