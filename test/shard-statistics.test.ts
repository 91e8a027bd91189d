/**
 * training.batch_norm_statistics: shard. After local training the moving statistics are the shard's, so a
 * one-image update no longer tells the director that image's batch-norm statistics (which it does with
 * 'batch', test/leakage-simulation.test.ts).
 */
import test from 'ava';
import { tf } from '../ts/core/tf.ts';
import { ExperimentSchema, ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';
import { readWeights, sliceNamed } from '../ts/core/weights.ts';
import { observedMoments } from '../ts/leakage/attacks/bn-statistics.ts';
import { batchMoments, paramsOfModel } from '../ts/leakage/functional-model.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const shard = loadPneumoniaMnist(PNEUMONIAMNIST, 'train', 300);
const spec = ModelSpecSchema.parse({ width: 4, seed: 3 });
/** One plain SGD step on one image of the shard: the leakage audit's probe. */
const probe = { optimizer: 'sgd', momentum: 0, learning_rate: 0.01, batch_size: 1, local_epochs: 1, examples_per_round: 1 };

async function oneImageUpdate(statistics: 'batch' | 'shard') {
  const model = buildModel(spec);
  const sent = readWeights(model);
  const params = paramsOfModel(model);
  const trained = await trainLocal(model, shard, { config: TrainingSchema.parse({ ...probe, batch_norm_statistics: statistics }) });
  const after = readWeights(model);
  const image = subset(shard, trained.trainedIndices);
  const delta = { manifest: after.manifest, values: after.values.map((v, i) => v - sent.values[i]) };
  return { model, params, delta, after, image };
}

const relativeError = (got: ArrayLike<number>, want: ArrayLike<number>) =>
  Math.max(...Array.from(want, (w, j) => Math.abs(got[j] - w) / (Math.abs(w) + 1e-3)));

test('shard statistics: layer 0\'s moving mean and variance are its input\'s moments over the whole shard', async (t) => {
  const { model, after } = await oneImageUpdate('shard');
  // conv0 with the weights after training, over all 300 images, computed directly.
  const kernel = tf.tensor4d(sliceNamed(after, 'conv0/kernel')!, [3, 3, 1, spec.width]);
  const [mean, variance] = tf.tidy(() => {
    const m = tf.moments(tf.conv2d(tf.tensor4d(shard.images, [300, 28, 28, 1]), kernel, 1, 'same'), [0, 1, 2]);
    return [m.mean.dataSync(), m.variance.dataSync()];
  });
  t.true(relativeError(sliceNamed(after, 'bn0/moving_mean')!, mean) < 1e-4, 'moving mean = shard mean');
  t.true(relativeError(sliceNamed(after, 'bn0/moving_variance')!, variance) < 1e-4, 'moving variance = shard variance');
  // Every layer's statistics were set (the initial moving variance is all ones).
  for (const layer of ['bn1', 'bn2']) t.false(sliceNamed(after, `${layer}/moving_variance`)!.every((v) => v === 1), layer);
  kernel.dispose();
  model.dispose();
});

test('shard statistics: a one-image update no longer reveals the image\'s batch-norm statistics; batch statistics do', async (t) => {
  for (const statistics of ['batch', 'shard'] as const) {
    const { model, params, delta, image } = await oneImageUpdate(statistics);
    const observed = observedMoments(params, delta)!;
    const truth = tf.tidy(() => batchMoments(params, tf.tensor4d(image.images, [1, 28, 28, 1])).map((m) => m.variance.dataSync()));
    const error = relativeError(observed[0].variance.dataSync(), truth[0]);
    if (statistics === 'batch') t.true(error < 1e-3, `batch: the update gives the image's layer-0 variance (error ${error})`);
    else t.true(error > 0.05, `shard: the update's statistics are not the image's (error ${error})`);
    model.dispose();
  }
});

test('shard statistics are refused with DP-SGD, which could not account for them', (t) => {
  const error = t.throws(() => ExperimentSchema.parse({
    name: 'x', rounds: 1, training: { batch_norm_statistics: 'shard', dp: { enabled: true } },
  }));
  t.regex(error!.message, /batch_norm_statistics: shard .* outside DP-SGD's accounting/);
});
