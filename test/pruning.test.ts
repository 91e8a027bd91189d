import test from 'ava';
import { pruneUpdate } from '../ts/envoy/pruning.ts';

const update = {
  manifest: [{ name: 'a', shape: [2, 5] }, { name: 'b', shape: [4] }],
  values: Float32Array.of(0.1, -5, 0.3, 2, -0.2, 0.05, 4, -1, 0.01, 3, /* b */ 0.001, -0.002, 0.003, -0.004),
};

test('pruning keeps the largest-magnitude fraction of each tensor and zeroes the rest', (t) => {
  const { update: pruned, report } = pruneUpdate(update, 0.3);
  // a: ceil(0.3 * 10) = 3 largest |v| (-5, 4, 3); b: ceil(0.3 * 4) = 2 (0.003, -0.004), kept although tiny.
  t.deepEqual([...pruned.values.subarray(0, 10)], [0, -5, 0, 0, 0, 0, 4, 0, 0, 3]);
  t.deepEqual([...pruned.values.subarray(10)].map((v) => +v.toFixed(3)), [0, 0, 0.003, -0.004]);
  t.deepEqual(report, { kept: 5, total: 14 });
  t.is(update.values[0], Float32Array.of(0.1)[0], 'the input update is left as it was');
});

test('pruning with p = 1 changes nothing; p outside (0, 1] is refused by name', (t) => {
  t.deepEqual([...pruneUpdate(update, 1).update.values], [...update.values]);
  t.throws(() => pruneUpdate(update, 0), { message: /keep_fraction must be in \(0, 1\], got 0/ });
  t.throws(() => pruneUpdate(update, 1.5), { message: /keep_fraction/ });
});
