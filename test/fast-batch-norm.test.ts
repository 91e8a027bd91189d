/**
 * The batch-norm layer with the fused training gradient (ts/core/fast-batch-norm.ts) against tfjs-layers' own:
 * the same outputs, gradients and moving statistics, and the same saved model.
 */
import test from 'ava';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { batchNormKernels, fastBatchNormalization, normalizeInTraining } from '../ts/core/fast-batch-norm.ts';
import { ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';
import { readWeights } from '../ts/core/weights.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const maxRelative = (a: TF.Tensor, b: TF.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / (tf.max(tf.abs(b)).dataSync()[0] + 1e-12));

function twins() {
  const reference = tf.layers.batchNormalization({ momentum: 0.9, name: 'bn0' });
  const fast = fastBatchNormalization({ momentum: 0.9, name: 'bn0' });
  const x = tf.randomNormal([8, 6, 6, 5], 0.3, 2, 'float32', 1) as TF.Tensor4D;
  reference.build(x.shape);
  fast.build(x.shape);
  // The same non-trivial scale and shift in both.
  const gamma = tf.randomUniform([5], 0.5, 1.5, 'float32', 2);
  const beta = tf.randomUniform([5], -0.5, 0.5, 'float32', 3);
  reference.setWeights([gamma, beta, tf.zeros([5]), tf.ones([5])]);
  fast.setWeights([gamma, beta, tf.zeros([5]), tf.ones([5])]);
  return { reference, fast, x };
}

test('training mode: the same output, gradients for input, gamma and beta, and moving statistics', (t) => {
  const { reference, fast, x } = twins();
  const upstream = tf.randomNormal(x.shape, 0, 1, 'float32', 4);
  const gradientsOf = (layer: TF.layers.Layer) => {
    const [gamma, beta] = layer.trainableWeights.map((w) => w.read());
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as TF.Tensor, upstream)) as TF.Scalar, [gamma, beta].map((w) => w as TF.Variable));
    const dx = tf.grad((input: TF.Tensor) => tf.sum(tf.mul(layer.apply(input, { training: true }) as TF.Tensor, upstream)))(x);
    return { value, dGamma: Object.values(grads)[0], dBeta: Object.values(grads)[1], dx };
  };
  const r = gradientsOf(reference);
  const f = gradientsOf(fast);
  t.true(maxRelative(f.value, r.value) < 1e-5, 'loss');
  t.true(maxRelative(f.dx, r.dx) < 1e-4, `input gradient off by ${maxRelative(f.dx, r.dx)}`);
  t.true(maxRelative(f.dGamma, r.dGamma) < 1e-4, 'gamma gradient');
  t.true(maxRelative(f.dBeta, r.dBeta) < 1e-4, 'beta gradient');
  const [, , rMean, rVar] = reference.getWeights();
  const [, , fMean, fVar] = fast.getWeights();
  t.true(maxRelative(fMean, rMean) < 1e-5 && maxRelative(fVar, rVar) < 1e-5, 'moving statistics moved alike (three training calls each)');
  t.true(tf.max(tf.abs(fMean)).dataSync()[0] > 0, 'and they did move');
});

test('inference mode is the parent layer, and the layer saves as tfjs-layers\' BatchNormalization', (t) => {
  const { reference, fast, x } = twins();
  t.true(maxRelative(fast.apply(x, { training: false }) as TF.Tensor, reference.apply(x, { training: false }) as TF.Tensor) < 1e-6);
  t.is(fast.getClassName(), 'BatchNormalization');
  t.deepEqual(fast.getConfig(), reference.getConfig());
});

test("both implementations of the fused step, TensorFlow's kernels and the formula in tfjs ops, give tf.moments and tf.batchNorm's numbers", (t) => {
  t.is(batchNormKernels, 'native', 'tfjs-node trains with TensorFlow\'s own fused kernels');
  const x = tf.randomNormal([6, 5, 5, 4], 0.5, 1.5, 'float32', 7) as TF.Tensor4D;
  const gamma = tf.randomUniform([4], 0.5, 1.5, 'float32', 8) as TF.Tensor1D;
  const beta = tf.randomUniform([4], -0.5, 0.5, 'float32', 9) as TF.Tensor1D;
  const upstream = tf.randomNormal(x.shape, 0, 1, 'float32', 10);
  const reference = (a: TF.Tensor4D, g: TF.Tensor1D, b: TF.Tensor1D) => { const { mean, variance } = tf.moments(a, [0, 1, 2]); return tf.batchNorm(a, mean, variance, b, g, 1e-3); };
  const grads = (f: (a: TF.Tensor4D, g: TF.Tensor1D, b: TF.Tensor1D) => TF.Tensor) =>
    tf.grads((a: TF.Tensor, g: TF.Tensor, b: TF.Tensor) => tf.sum(tf.mul(f(a as TF.Tensor4D, g as TF.Tensor1D, b as TF.Tensor1D), upstream)))([x, gamma, beta]);
  const expected = grads(reference);
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  for (const kernels of ['native', 'ops'] as const) {
    const out = normalizeInTraining(x, gamma, beta, 1e-3, kernels);
    t.true(maxRelative(out.y, reference(x, gamma, beta)) < 1e-5, `${kernels}: output`);
    t.true(maxRelative(out.mean, mean) < 1e-5 && maxRelative(out.variance, variance) < 1e-4, `${kernels}: the batch's mean and biased variance`);
    grads((a, g, b) => normalizeInTraining(a, g, b, 1e-3, kernels).y).forEach((got, i) => t.true(maxRelative(got, expected[i]) < 1e-4, `${kernels}: gradient ${i} off by ${maxRelative(got, expected[i])}`));
  }
});

test('a model trained with the fused batch norm ends where tfjs-layers\' own takes it (five Adam steps on X-rays)', async (t) => {
  const images = loadPneumoniaMnist(PNEUMONIAMNIST, 'train', 160);
  const config = TrainingSchema.parse({ batch_size: 32, learning_rate: 1e-3, local_epochs: 1 });
  const trained = async (fusedBatchNorm: boolean) => {
    const model = buildModel(ModelSpecSchema.parse({ architecture: 'convnet_gap', width: 4, seed: 3 }), {}, { fusedBatchNorm });
    await trainLocal(model, images, { config, seedSalt: 1 });
    const w = readWeights(model);
    model.dispose();
    return w.values;
  };
  const [fused, reference] = [await trained(true), await trained(false)];
  let diff = 0;
  let norm = 0;
  reference.forEach((v, i) => { diff += (fused[i] - v) ** 2; norm += v * v; });
  t.true(Math.sqrt(diff / norm) < 1e-3, `relative L2 difference ${Math.sqrt(diff / norm).toExponential(2)}`);
});
