/**
 * The analytic attack (linear-layer leakage + feature inversion) on real one-image envoy updates: the
 * registry's ConvNetBN with and without PRECODE trains one SGD step on one X-ray with the envoy's own training
 * loop (PRECODE samples its noise as in a real round), and the attack sees only the weights sent and the update.
 */
import test from 'ava';
import { ExperimentSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { buildModel } from '../ts/core/model.ts';
import { tf } from '../ts/core/tf.ts';
import type * as tfTypes from '@tensorflow/tfjs';
import { trainLocal } from '../ts/core/training.ts';
import { readWeights, type FlatWeights } from '../ts/core/weights.ts';
import { batchMoments, convFeatures, paramsOfModel } from '../ts/leakage/functional-model.ts';
import { featureObjective, invertFeatures } from '../ts/leakage/attacks/feature-inversion.ts';
import { observeGradients } from '../ts/leakage/attacks/common.ts';
import { dominantRows, recoverLayerInput } from '../ts/leakage/attacks/linear-layer.ts';
import { runLeakage } from '../ts/leakage/run.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train');
const PROBE = { examples_per_round: 1, batch_size: 1, local_epochs: 1, optimizer: 'sgd', momentum: 0, learning_rate: 0.001 } as const;

/** What the director receives from an envoy that trained the probe on image `index`. */
async function oneImageUpdate(model: Record<string, unknown>, index: number, training: Record<string, unknown> = {}) {
  const config = TrainingSchema.parse({ ...PROBE, batch_norm_statistics: 'batch', ...training });
  const spec = ExperimentSchema.parse({ name: 'x', rounds: 1, model: { precode: { enabled: false }, ...model }, training: config }).model;
  const net = buildModel(spec);
  const sent = readWeights(net);
  const image = subset(train, [index]);
  await trainLocal(net, image, { config: { ...config, examples_per_round: undefined } });
  const received = readWeights(net);
  net.dispose();
  const delta: FlatWeights = { manifest: received.manifest, values: received.values.map((v, i) => v - sent.values[i]) };
  return { spec, sent, delta, image, config };
}

async function attack(u: Awaited<ReturnType<typeof oneImageUpdate>>, iterations = 2000, restarts = 4) {
  return runLeakage({
    attack: 'analytic', model: u.spec, bnMode: 'train', images: u.image.images, labels: u.image.labels, batch: 1,
    floorImages: train.images, iterations, restarts, learningRate: 0.1, tvWeight: 0, seed: 0,
    localSteps: 1, localLearningRate: u.config.learning_rate, localOptimizer: 'sgd', saved: { sent: u.sent, delta: u.delta },
    // As the audit: statistics set over the shard say nothing about the batch, so the attacker ignores them.
    ...(u.config.batch_norm_statistics === 'shard' ? { bnStatisticsWeight: 0 } : {}),
  });
}

test('linear-layer leakage reads one image\'s features off a dense layer exactly, PRECODE\'s encoder included', (t) => {
  for (const precode of [false, true]) {
    const net = buildModel(ExperimentSchema.parse({ name: 'x', rounds: 1, model: { width: 8, precode: { enabled: precode } } }).model);
    const params = paramsOfModel(net);
    const s = { params, mode: 'train' as const, imageShape: [28, 28, 1] as [number, number, number], batch: 1, numClasses: 2 };
    const image = train.images.slice(0, 784);
    const observed = observeGradients(s, image, Int32Array.of(train.labels[0]));
    const { features, layer, residual } = recoverLayerInput(params, observed);
    t.is(layer, precode ? 'precode/encoder' : 'classifier');
    t.true(residual < 1e-5, `a one-image weight gradient is rank one (residual ${residual})`);
    const truth = convFeatures(params, tf.tensor4d(image, [1, 28, 28, 1]), 'train');
    const error = tf.tidy(() => tf.max(tf.abs(tf.sub(features, truth))).dataSync()[0] / tf.max(tf.abs(truth)).dataSync()[0]);
    t.true(error < 1e-5, `recovered features off by ${error} (relative)`);
    tf.dispose([features, truth, ...observed]);
    net.dispose();
  }
});

test('for a batch, the rows of a wide dense layer that one image dominates give each image\'s features', (t) => {
  const net = buildModel(ExperimentSchema.parse({ name: 'x', rounds: 1, model: { width: 8, precode: { enabled: true } } }).model);
  const params = paramsOfModel(net);
  const s = { params, mode: 'train' as const, imageShape: [28, 28, 1] as [number, number, number], batch: 2, numClasses: 2 };
  const observed = observeGradients(s, train.images.slice(0, 2 * 784), train.labels.slice(0, 2));
  const rows = dominantRows(params, observed, 2);
  t.deepEqual(rows.shape, [2, params.precode!.encoderKernel.shape[0]]);
  tf.dispose([rows, ...observed]);
  net.dispose();
});

test('the analytic attack rebuilds the X-ray from a one-image update of ConvNetBN at >= 60 dB', async (t) => {
  const update = await oneImageUpdate({ width: 32, seed: 1 }, 3);
  const r = await attack(update);
  t.true(r.psnr_best >= 60, `PSNR ${r.psnr_best.toFixed(2)} dB (floor ${r.floor_psnr_mean.toFixed(2)} dB)`);
  t.true(r.ssim_mean > 0.999);
  t.false(r.intensity_prior, 'the scale comes from batch norm\'s epsilon, not from a prior');
});

test('an image whose features feature inversion matched only approximately gets the intensity prior (its contrast is not pinned)', async (t) => {
  // Shard statistics: the update carries no statistics of the image that could pin its intensities instead.
  const update = await oneImageUpdate({ width: 8, seed: 1 }, 3, { batch_norm_statistics: 'shard' });
  // Five Adam steps and no polish: the features are matched nowhere near float32 precision.
  const r = await runLeakage({
    attack: 'analytic', model: update.spec, bnMode: 'train', images: update.image.images, labels: update.image.labels, batch: 1,
    floorImages: train.images, iterations: 5, restarts: 1, polishIterations: 0, learningRate: 0.1, tvWeight: 0, seed: 0,
    localSteps: 1, localLearningRate: update.config.learning_rate, localOptimizer: 'sgd', saved: { sent: update.sent, delta: update.delta },
    bnStatisticsWeight: 0,
  });
  t.true(r.intensity_prior);
});

test('the analytic attack rebuilds the X-ray through PRECODE (noise sampled by the envoy) at >= 60 dB', async (t) => {
  const update = await oneImageUpdate({ width: 32, seed: 1, precode: { enabled: true } }, 5, { batch_norm_statistics: 'shard' });
  const r = await attack(update);
  t.true(r.psnr_best >= 60, `PSNR ${r.psnr_best.toFixed(2)} dB (floor ${r.floor_psnr_mean.toFixed(2)} dB)`);
});

test('DP-SGD (clip 1, noise multiplier 1) leaves the analytic attack at or below the floor + 1 dB', async (t) => {
  const update = await oneImageUpdate({ width: 32, seed: 1 }, 3, { dp: { enabled: true, clip_norm: 1, noise_multiplier: 1, delta: 1e-5 } });
  const r = await attack(update, 500, 1);
  const gap = r.psnr_best - r.floor_psnr_mean;
  t.true(gap <= 1, `gap above the floor ${gap.toFixed(2)} dB (PSNR ${r.psnr_best.toFixed(2)}, floor ${r.floor_psnr_mean.toFixed(2)})`);
});

test('a secure aggregate is modelled as the weighted sum of each envoy\'s own one-image gradient, not one joint batch', (t) => {
  const net = buildModel(ExperimentSchema.parse({ name: 'x', rounds: 1, model: { width: 4 } }).model);
  const params = paramsOfModel(net);
  const images = train.images.slice(0, 3 * 784);
  const labels = train.labels.slice(0, 3);
  const weights = [0.5, 0.3, 0.2];
  const single = (i: number) => observeGradients({ params, mode: 'train', imageShape: [28, 28, 1], batch: 1, numClasses: 2 },
    images.slice(i * 784, (i + 1) * 784), labels.slice(i, i + 1));
  const expected = tf.tidy(() => {
    const per = [0, 1, 2].map(single);
    return per[0].map((_, k) => tf.addN(per.map((g, i) => tf.mul(g[k], weights[i]))));
  });
  const modelled = observeGradients({ params, mode: 'train', imageShape: [28, 28, 1], batch: 3, numClasses: 2, aggregate: { weights, groupSize: 1 } }, images, labels);
  const joint = observeGradients({ params, mode: 'train', imageShape: [28, 28, 1], batch: 3, numClasses: 2 }, images, labels);
  const maxDiff = (a: tfTypes.Tensor[], b: tfTypes.Tensor[]) => Math.max(...a.map((x, k) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, b[k]))).dataSync()[0])));
  t.true(maxDiff(modelled, expected) < 1e-6, 'the model of the aggregate is the weighted sum of the single-image gradients');
  t.true(maxDiff(joint, expected) > 1e-3, 'a joint batch of three is a different observation');
  tf.dispose([...expected, ...modelled, ...joint]);
  net.dispose();
});

test("per-image batch norm makes a batch of independent one-image problems: each image's features and objective are its own", (t) => {
  const net = buildModel(ExperimentSchema.parse({ name: 'x', rounds: 1, model: { width: 8, precode: { enabled: true } } }).model);
  const params = paramsOfModel(net);
  const images = train.images.slice(0, 3 * 784);
  const batch = tf.tensor4d(images, [3, 28, 28, 1]);
  const alone = [0, 1, 2].map((i) => convFeatures(params, tf.tensor4d(images.slice(i * 784, (i + 1) * 784), [1, 28, 28, 1]), 'train'));
  const together = convFeatures(params, batch, 'per-image');
  const joint = convFeatures(params, batch, 'train');
  const maxDiff = (a: tfTypes.Tensor, b: tfTypes.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  t.true(maxDiff(together, tf.concat(alone, 0)) < 1e-5, 'per-image features are the one-image features');
  t.true(maxDiff(joint, tf.concat(alone, 0)) > 1e-3, 'a training-mode batch mixes the images');
  // The objective of three targets at once is the sum of the three one-image objectives.
  const targets = tf.concat(alone.map((f) => tf.add(f, 0.01)), 0) as tfTypes.Tensor2D;
  const s = { params, mode: 'per-image' as const, imageShape: [28, 28, 1] as [number, number, number], batch: 3, numClasses: 2 };
  const sum = featureObjective(s, targets)(batch).dataSync()[0];
  const each = [0, 1, 2].map((i) => featureObjective({ ...s, mode: 'train', batch: 1 }, tf.slice(targets, [i, 0], [1, -1]) as tfTypes.Tensor2D)(
    tf.tensor4d(images.slice(i * 784, (i + 1) * 784), [1, 28, 28, 1])).dataSync()[0]);
  t.true(Math.abs(sum - each.reduce((a, b) => a + b, 0)) < 1e-5 * sum, `${sum} vs ${each.join(' + ')}`);
  net.dispose();
});

test('an image whose features are matched to float32 precision is exact, and ends the restarts, though batch-norm statistics read off an update are not matched as closely', (t) => {
  const net = buildModel(ExperimentSchema.parse({ name: 'x', rounds: 1, model: { width: 8 } }).model);
  const params = paramsOfModel(net);
  const s = { params, mode: 'train' as const, imageShape: [28, 28, 1] as [number, number, number], batch: 1, numClasses: 2 };
  const image = train.images.slice(0, 784);
  const truth = tf.tensor4d(image, [1, 28, 28, 1]);
  const target = convFeatures(params, truth, 'train');
  // As statistics undone from a float32 update, a little off: the true image matches them only to about 1e-9.
  const observed = batchMoments(params, truth).map((m) => ({ mean: tf.mul(m.mean, 1 + 1e-5) as tfTypes.Tensor1D, variance: tf.mul(m.variance, 1 + 1e-5) as tfTypes.Tensor1D }));
  // Restart 0 starts at the true image and (one step of 1e-9, no polish) stays there; the others start from noise.
  const r = invertFeatures(s, target, Int32Array.of(train.labels[0]), {
    iterations: 1, restarts: 3, polishIterations: 0, learningRate: 1e-9, tvWeight: 0, seed: 0, start: image, bnStatistics: { target: observed, weight: 10 },
  });
  t.true(r.loss > 1e-10, `the whole objective stays above the exactness threshold (${r.loss})`);
  t.deepEqual(r.exact, [true]);
  t.is(r.iterations, 1, 'one restart ran: the first found the image');
  tf.dispose([truth, target, ...observed.flatMap((m) => [m.mean, m.variance])]);
  net.dispose();
});
