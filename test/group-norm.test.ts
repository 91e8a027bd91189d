import test from 'ava';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { buildModel } from '../ts/core/model.ts';
import { groupsFor, GroupNormalization } from '../ts/core/group-norm.ts';
import { paramsOfModel } from '../ts/leakage/functional-model.ts';

test('group norm normalizes each image\'s channel groups to mean 0 and variance 1, whatever else is in the batch', (t) => {
  const layer = new GroupNormalization({ name: 'gn' });
  const input = tf.input({ shape: [5, 5, 16] });
  const m = tf.model({ inputs: input, outputs: layer.apply(input) as TF.SymbolicTensor });
  t.is(layer.groups, 8);
  const x = tf.randomNormal([3, 5, 5, 16], 2, 3, 'float32', 7);
  const y = m.predict(x) as TF.Tensor4D;
  const grouped = y.reshape([3, 5, 5, 8, 2]);
  const { mean, variance } = tf.moments(grouped, [1, 2, 4]);
  t.true(mean.abs().max().dataSync()[0] < 1e-4, 'group means');
  t.true(variance.sub(1).abs().max().dataSync()[0] < 1e-2, 'group variances (epsilon 1e-3)');
  // One image alone gives what it gives in the batch: nothing mixes images (what DP-SGD's clipping relies on).
  const alone = m.predict(x.slice([1], [1])) as TF.Tensor;
  t.true(alone.sub(y.slice([1], [1])).abs().max().dataSync()[0] < 1e-5);
  t.deepEqual([groupsFor(4), groupsFor(12), groupsFor(64), groupsFor(7)], [4, 6, 8, 7]);
});

test('a group-norm model has no moving statistics to leak, and the leakage lab says plainly it does not model it', (t) => {
  const m = buildModel(ModelSpecSchema.parse({ architecture: 'convnet_gap', normalization: 'group', width: 4, seed: 1 }));
  const names = m.weights.map((w) => w.originalName);
  t.false(names.some((n) => /moving/.test(n)), names.join(', '));
  t.true(names.includes('gn0/gamma') && names.includes('gn4/beta'));
  t.is(m.trainableWeights.length, m.weights.length);
  t.throws(() => paramsOfModel(m), { message: /unknown weights: gn0\/gamma/ });
});
