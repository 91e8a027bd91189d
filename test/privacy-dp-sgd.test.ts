import test from 'ava';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { size, subset, type ImageDataset } from '../ts/core/data/dataset.ts';
import { SeededRandom } from '../ts/core/data/rng.ts';
import { buildModel, type LayersModel } from '../ts/core/model.ts';
import { evaluate } from '../ts/core/training.ts';
import { batchOf } from '../ts/core/data/batches.ts';
import { GaussianNoise, dpSgdStep, gradientMethodFor, perExampleGradients, type PerExampleLoss } from '../ts/core/privacy/dp-sgd.ts';
import { RdpAccountant } from '../ts/core/privacy/rdp-accountant.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const train = subset(loadPneumoniaMnist(PNEUMONIAMNIST, 'train'), [...Array(2048).keys()]);
const heldOut = subset(loadPneumoniaMnist(PNEUMONIAMNIST, 'val'), [...Array(300).keys()]);
const model = (width = 4, seed = 2) => buildModel(ModelSpecSchema.parse({ width, seed }));
const crossEntropy: PerExampleLoss = (logits, y) =>
  tf.losses.softmaxCrossEntropy(tf.oneHot(y, 2), logits, undefined, 0, tf.Reduction.NONE) as TF.Tensor1D;
const meanCrossEntropy = (logits: TF.Tensor2D, y: TF.Tensor1D) => crossEntropy(logits, y).mean() as TF.Scalar;
const firstBatch = (n: number, ds: ImageDataset = train) => batchOf(ds, [...Array(n).keys()]);

/** Trainable weights only, flattened (what an optimizer step changes). */
function trainable(m: LayersModel): Float32Array {
  const parts = m.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) { out.set(p, offset); offset += p.length; }
  return out;
}
const minus = (a: Float32Array, b: Float32Array) => a.map((v, i) => v - b[i]);
const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));

/** Weight change of one DP-SGD step with plain SGD from a fresh model. */
function stepDelta(
  options: Parameters<typeof dpSgdStep>[5], lr: number, x: TF.Tensor, y: TF.Tensor1D, noise = new GaussianNoise(1), m = model(),
): { delta: Float32Array; clippedFraction: number } {
  const before = trainable(m);
  const optimizer = tf.train.sgd(lr);
  const { clippedFraction } = dpSgdStep(m, optimizer, x, y, crossEntropy, options, noise);
  optimizer.dispose();
  return { delta: minus(trainable(m), before), clippedFraction };
}

test('without clipping or noise, a DP-SGD step is the plain SGD step on the mean loss', (t) => {
  const { x, y } = firstBatch(8);
  const dp = stepDelta({ clipNorm: 1e6, noiseMultiplier: 0 }, 0.1, x, y).delta;
  const plainModel = model();
  const before = trainable(plainModel);
  const sgd = tf.train.sgd(0.1);
  // BatchNorm in inference mode, as DP-SGD runs it.
  sgd.minimize(() => meanCrossEntropy(plainModel.apply(x, { training: false }) as TF.Tensor2D, y));
  const plain = minus(trainable(plainModel), before);
  const gap = norm(minus(dp, plain)) / norm(plain);
  t.true(norm(plain) > 1e-3);
  t.true(gap < 1e-4, `relative gap between the summed per-example gradients and the batch gradient: ${gap}`);
  tf.dispose([x, y]);
});

/** Largest |a − b| relative to the largest |b|, over every variable's per-example gradients (all non-zero). */
function gradientGap(a: TF.Tensor[], b: TF.Tensor[]): number {
  return Math.max(...a.map((g, k) => tf.tidy(() => {
    const scale = b[k].abs().max().dataSync()[0];
    if (!(scale > 0)) throw new Error(`variable ${k} has a zero gradient: the comparison would prove nothing`);
    return g.sub(b[k]).abs().max().dataSync()[0] / scale;
  })));
}

for (const [what, make] of [
  ['ConvNetBN', () => model(8)],
  ['convnet_gap with group norm, the DP recipe', () => buildModel(ModelSpecSchema.parse({ architecture: 'convnet_gap', normalization: 'group', width: 8, seed: 2 }))],
] as const) test(`vectorized per-example gradients equal one backward pass per example (${what})`, (t) => {
  const m = make();
  t.is(gradientMethodFor(m), 'vectorized');
  const { x, y } = firstBatch(12);
  tf.tidy(() => {
    const fast = perExampleGradients(m, x, y, crossEntropy, 'vectorized');
    const loop = perExampleGradients(m, x, y, crossEntropy, 'loop');
    t.deepEqual(fast.grads.map((g) => g.shape), m.trainableWeights.map((w) => [12, ...w.shape]));
    const gap = gradientGap(fast.grads, loop.grads);
    t.true(gap < 1e-4, `relative gap ${gap}`);
    t.true(Math.abs(fast.lossSum.dataSync()[0] - loop.lossSum.dataSync()[0]) < 1e-4);
  });
  tf.dispose([x, y]);
});

test('the vectorized rules cover conv biases, even kernels, valid padding and BatchNorm after Dense', (t) => {
  const m = tf.sequential({ layers: [
    tf.layers.conv2d({
      inputShape: [28, 28, 1], filters: 3, kernelSize: 2, padding: 'same', useBias: true,
      kernelInitializer: tf.initializers.heNormal({ seed: 1 }),
    }),
    // Moving statistics away from (0, 1), so that using them is checked; the mean keeps the ReLUs alive.
    tf.layers.batchNormalization({
      movingMeanInitializer: tf.initializers.constant({ value: -0.5 }),
      movingVarianceInitializer: tf.initializers.constant({ value: 2 }),
    }),
    tf.layers.reLU(),
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'valid', kernelInitializer: tf.initializers.heNormal({ seed: 2 }) }),
    tf.layers.maxPooling2d({ poolSize: 4 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 6, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    tf.layers.batchNormalization(), // (tfjs cannot differentiate center: false or scale: false at all)
    tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
  ] });
  t.is(gradientMethodFor(m), 'vectorized');
  const { x, y } = firstBatch(5);
  tf.tidy(() => {
    const fast = perExampleGradients(m, x, y, crossEntropy, 'vectorized');
    const gap = gradientGap(fast.grads, perExampleGradients(m, x, y, crossEntropy, 'loop').grads);
    t.true(gap < 1e-4, `relative gap ${gap}`);
  });
  tf.dispose([x, y]);
});

test('a model with a layer without a per-example rule falls back to the loop, with the same step', (t) => {
  const make = () => tf.sequential({ layers: [
    tf.layers.flatten({ inputShape: [28, 28, 1] }),
    tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ] });
  t.is(gradientMethodFor(make()), 'loop');
  t.throws(() => perExampleGradients(make(), tf.zeros([1, 28, 28, 1]), tf.tensor1d([0], 'int32'), crossEntropy, 'vectorized'));
  const { x, y } = firstBatch(6);
  const dp = stepDelta({ clipNorm: 1e6, noiseMultiplier: 0 }, 0.1, x, y, new GaussianNoise(1), make()).delta;
  const plainModel = make();
  const before = trainable(plainModel);
  tf.train.sgd(0.1).minimize(() => meanCrossEntropy(plainModel.apply(x) as TF.Tensor2D, y));
  const plain = minus(trainable(plainModel), before);
  t.true(norm(minus(dp, plain)) / norm(plain) < 1e-4);
  tf.dispose([x, y]);
});

test('the loss must be per example', (t) => {
  const { x, y } = firstBatch(2);
  const batchLoss = meanCrossEntropy as unknown as PerExampleLoss;
  const error = t.throws(() => dpSgdStep(model(), tf.train.sgd(0.1), x, y, batchLoss, { clipNorm: 1, noiseMultiplier: 0 }, new GaussianNoise(1)));
  t.regex(error!.message, /one loss per example/);
  tf.dispose([x, y]);
});

test('one example moves the weights by exactly lr * C / B when its gradient is clipped', (t) => {
  const { x, y } = firstBatch(1);
  const { delta, clippedFraction } = stepDelta({ clipNorm: 1e-3, noiseMultiplier: 0 }, 0.5, x, y);
  t.is(clippedFraction, 1);
  t.true(Math.abs(norm(delta) - 0.5 * 1e-3) < 1e-3 * 0.5 * 1e-3, `|update| = ${norm(delta)}`);
  // Dividing by the expected batch size, not the actual one.
  const scaled = stepDelta({ clipNorm: 1e-3, noiseMultiplier: 0, expectedBatchSize: 4 }, 0.5, x, y).delta;
  t.true(Math.abs(norm(scaled) - 0.5 * 1e-3 / 4) < 1e-3 * 0.5 * 1e-3 / 4);
  tf.dispose([x, y]);
});

test('a huge-loss example cannot move the weights by more than lr * C', (t) => {
  const { x: images, y } = firstBatch(6);
  // Example 0 brightened 300x with its label flipped: its unclipped gradient dwarfs the others.
  const x = tf.tidy(() => tf.concat([images.slice(0, 1).mul(300), images.slice(1)]));
  const flipped = tf.tidy(() => tf.concat([tf.sub(tf.scalar(1, 'int32'), y.slice(0, 1)), y.slice(1)]) as TF.Tensor1D);
  const lr = 0.2;
  const clipNorm = 1;
  const unclipped = stepDelta({ clipNorm: 1e9, noiseMultiplier: 0 }, lr, x, flipped);
  const clipped = stepDelta({ clipNorm, noiseMultiplier: 0 }, lr, x, flipped);
  t.true(norm(unclipped.delta) > 10 * lr * clipNorm, `the example really is huge: ${norm(unclipped.delta)}`);
  t.true(norm(clipped.delta) <= lr * clipNorm * (1 + 1e-5), `|update| = ${norm(clipped.delta)}`);
  t.true(clipped.clippedFraction > 0);
  tf.dispose([images, y, x, flipped]);
});

test('BatchNorm moving statistics are not touched by a DP-SGD step (they would leak unnoised)', (t) => {
  const m = model();
  const nonTrainable = () => m.nonTrainableWeights.map((w) => Array.from(w.read().dataSync()));
  const before = nonTrainable();
  t.true(before.length > 0);
  const { x, y } = firstBatch(8);
  const optimizer = tf.train.adam(0.01);
  dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm: 1, noiseMultiplier: 1 }, new GaussianNoise(3));
  t.deepEqual(nonTrainable(), before);
  t.notDeepEqual(Array.from(trainable(m)), Array.from(trainable(model())));
  tf.dispose([x, y]);
  optimizer.dispose();
});

test('the noise on the averaged gradient has standard deviation sigma * C / B', (t) => {
  const { x, y } = firstBatch(4);
  const [sigma, clipNorm, batch, lr] = [2, 0.5, 8, 1];
  const options = { clipNorm, expectedBatchSize: batch };
  const noisy = stepDelta({ ...options, noiseMultiplier: sigma }, lr, x, y, new GaussianNoise(11), model(16)).delta;
  const clean = stepDelta({ ...options, noiseMultiplier: 0 }, lr, x, y, new GaussianNoise(11), model(16)).delta;
  const noise = minus(noisy, clean); // = −lr · N(0, σ²C²) / B per coordinate
  const n = noise.length;
  const mean = noise.reduce((s, v) => s + v, 0) / n;
  const variance = noise.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
  const kurtosis = noise.reduce((s, v) => s + (v - mean) ** 4, 0) / n / variance ** 2;
  const expected = (lr * sigma * clipNorm) / batch;
  t.log(`${n} coordinates: std ${Math.sqrt(variance).toFixed(5)} (expected ${expected}), mean ${mean.toExponential(2)}, `
    + `kurtosis ${kurtosis.toFixed(3)}`);
  t.true(n > 10_000);
  t.true(Math.abs(Math.sqrt(variance) / expected - 1) < 0.03);
  t.true(Math.abs(mean) < (4 * expected) / Math.sqrt(n));
  t.true(Math.abs(kurtosis - 3) < 0.15, 'Gaussian tails (kurtosis 3)');
  tf.dispose([x, y]);
});

test('the same noise seed gives the same weights, another seed or no seed different ones', (t) => {
  const { x, y } = firstBatch(4);
  const run = (noise: GaussianNoise) => Array.from(stepDelta({ clipNorm: 1, noiseMultiplier: 1 }, 0.1, x, y, noise).delta);
  t.deepEqual(run(new GaussianNoise(7)), run(new GaussianNoise(7)));
  t.notDeepEqual(run(new GaussianNoise(7)), run(new GaussianNoise(8)));
  t.notDeepEqual(run(new GaussianNoise()), run(new GaussianNoise()));
  tf.dispose([x, y]);
});

test('GaussianNoise draws standard normals; keys are 32 bytes', (t) => {
  const noise = new GaussianNoise(new Uint8Array(32).fill(9));
  const n = 200_000;
  let sum = 0;
  let squares = 0;
  let beyond3 = 0;
  for (let i = 0; i < n; i++) {
    const z = noise.normal();
    sum += z;
    squares += z * z;
    if (Math.abs(z) > 3) beyond3++;
  }
  t.true(Math.abs(sum / n) < 0.01);
  t.true(Math.abs(squares / n - 1) < 0.01);
  t.true(Math.abs(beyond3 / n - 0.0027) < 0.0006, `P(|z| > 3) = ${beyond3 / n}`);
  t.throws(() => new GaussianNoise(new Uint8Array(16)));
});

test('a data-independent loss term (FedProx) is added unclipped and unnoised', (t) => {
  const m = model();
  const before = trainable(m);
  const { x, y } = firstBatch(4);
  const optimizer = tf.train.sgd(0.1);
  // Proximal term to the origin, μ = 1: its gradient is w itself, so SGD scales the weights by 0.9. The data
  // part is clipped to 1e-9, far below what this comparison can see.
  const proximal = () => tf.addN(m.trainableWeights.map((w) => w.read().square().sum())).mul(0.5) as TF.Scalar;
  dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm: 1e-9, noiseMultiplier: 0, dataIndependentLoss: proximal }, new GaussianNoise(1));
  const after = trainable(m);
  const worst = after.reduce((w, v, i) => Math.max(w, Math.abs(v - 0.9 * before[i])), 0);
  t.true(worst < 1e-6, `max deviation from 0.9 w: ${worst}`);
  tf.dispose([x, y]);
  optimizer.dispose();
});

test('a step leaves no tensors behind and refuses bad options', (t) => {
  const m = model();
  const optimizer = tf.train.sgd(0.1);
  const { x, y } = firstBatch(4);
  const noise = new GaussianNoise(1);
  dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm: 1, noiseMultiplier: 1 }, noise); // warm-up
  const tensors = tf.memory().numTensors;
  dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm: 1, noiseMultiplier: 1 }, noise);
  t.is(tf.memory().numTensors, tensors);
  t.throws(() => dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm: 0, noiseMultiplier: 1 }, noise));
  t.throws(() => dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm: 1, noiseMultiplier: -1 }, noise));
  t.throws(() => dpSgdStep(m, optimizer, x, y.slice(0, 3), crossEntropy, { clipNorm: 1, noiseMultiplier: 1 }, noise));
  tf.dispose([x, y]);
  optimizer.dispose();
});

test('DP-SGD with modest noise still learns to detect pneumonia on real X-rays', (t) => {
  const m = model(4, 3);
  const optimizer = tf.train.momentum(0.1, 0.9); // the experiment config's 'sgd'
  const [batchSize, epochs, sigma, clipNorm] = [64, 2, 1.0, 1];
  const shuffle = new SeededRandom(1);
  const noise = new GaussianNoise(5);
  const accountant = new RdpAccountant();
  const before = evaluate(m, heldOut);
  const n = size(train);
  const started = performance.now();
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = shuffle.shuffle([...Array(n).keys()]);
    for (let start = 0; start < n; start += batchSize) {
      const { x, y } = batchOf(train, order.slice(start, start + batchSize));
      dpSgdStep(m, optimizer, x, y, crossEntropy, { clipNorm, noiseMultiplier: sigma, expectedBatchSize: batchSize }, noise);
      tf.dispose([x, y]);
    }
    accountant.step(sigma, batchSize / n, Math.ceil(n / batchSize));
  }
  const seconds = (performance.now() - started) / 1000;
  const after = evaluate(m, heldOut);
  const { epsilon } = accountant.epsilon(1e-5);
  t.log(`${epochs} epochs of ${n} X-rays in ${seconds.toFixed(1)} s: held-out AUC ${before.roc_auc!.toFixed(3)} -> ${after.roc_auc!.toFixed(3)}, `
    + `loss ${before.loss.toFixed(3)} -> ${after.loss.toFixed(3)}, (ε, δ) = (${epsilon.toFixed(2)}, 1e-5)`);
  t.true(after.roc_auc! > 0.85, `held-out AUC ${after.roc_auc!}`);
  t.true(after.roc_auc! > before.roc_auc! + 0.1);
  t.true(epsilon > 0.5 && epsilon < 5, `epsilon ${epsilon}`);
  optimizer.dispose();
});
