import test from 'ava';
import { FedAvg } from '../ts/director/strategies/fedavg.ts';
import type { FlatWeights } from '../ts/core/weights.ts';

const manifest = [{ name: 'w', shape: [3] }];
const flat = (...v: number[]): FlatWeights => ({ manifest, values: Float32Array.from(v) });

test('FedAvg moves the global model by the example-weighted mean of the deltas', (t) => {
  const global = flat(1, 2, 3);
  const next = new FedAvg().aggregate(global, [
    { envoy: 'a', examples: 100, delta: flat(1, 0, -1) },
    { envoy: 'b', examples: 300, delta: flat(-1, 4, 1) },
  ]);
  // a weighs 1/4, b 3/4: 1 + (0.25 - 0.75), 2 + 3, 3 + (-0.25 + 0.75)
  t.deepEqual(Array.from(next.values), [0.5, 5, 3.5]);
});

test('FedAvg of identical deltas is that delta, whatever the counts', (t) => {
  const next = new FedAvg().aggregate(flat(0, 0, 0), [
    { envoy: 'a', examples: 7, delta: flat(0.5, -0.25, 2) },
    { envoy: 'b', examples: 9000, delta: flat(0.5, -0.25, 2) },
  ]);
  t.deepEqual(Array.from(next.values), [0.5, -0.25, 2]);
});

test('FedAvg refuses empty rounds and mismatched updates with clear errors', (t) => {
  t.regex(t.throws(() => new FedAvg().aggregate(flat(0, 0, 0), []))!.message, /at least one update/);
  t.regex(t.throws(() => new FedAvg().aggregate(flat(0, 0, 0), [{ envoy: 'a', examples: 1, delta: { manifest, values: new Float32Array(2) } }]))!.message,
    /update from a has 2 values, the model 3/);
});
