/** FedAvg (McMahan et al. 2017): the global model moves by the example-weighted mean of the envoys' deltas. */
import type { FlatWeights } from '../../core/weights.ts';
import type { AggregationStrategy, ClientUpdate } from './strategy.ts';
import { checkLengths } from './strategy.ts';

export class FedAvg implements AggregationStrategy {
  readonly name = 'fedavg';

  aggregate(global: FlatWeights, updates: ClientUpdate[]): FlatWeights {
    if (!updates.length) throw new Error('FedAvg needs at least one update');
    const total = updates.reduce((n, u) => n + u.examples, 0);
    if (total <= 0) throw new Error('FedAvg: the updates report no training examples');
    checkLengths(global, updates);
    // Accumulate in float64: summing many float32 deltas loses precision otherwise.
    const sum = new Float64Array(global.values.length);
    // In a fixed order (by envoy), so the same updates give the same model whatever order they arrived in.
    for (const u of [...updates].sort((a, b) => (a.envoy < b.envoy ? -1 : a.envoy > b.envoy ? 1 : 0))) {
      const w = u.examples / total;
      const d = u.delta.values;
      for (let i = 0; i < sum.length; i++) sum[i] += w * d[i];
    }
    const values = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) values[i] = global.values[i] + sum[i];
    return { manifest: global.manifest, values };
  }
}
