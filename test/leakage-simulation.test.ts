/**
 * The attacker's simulation of the envoy must be the envoy: the multi-step attack's replay of local training
 * (SGD, momentum, Adam) and the batch statistics read off an update, against real tfjs training.
 */
import test from 'ava';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';
import { readWeights, sliceNamed, type FlatWeights } from '../ts/core/weights.ts';
import { oneHot } from '../ts/leakage/attacks/common.ts';
import { observedMoments } from '../ts/leakage/attacks/bn-statistics.ts';
import { simulateUpdate } from '../ts/leakage/attacks/multi-step.ts';
import { batchMoments, paramsOfModel, trainableNames } from '../ts/leakage/functional-model.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const victims = subset(loadPneumoniaMnist(PNEUMONIAMNIST, 'train', 64), [3, 40]);
const spec = ModelSpecSchema.parse({ width: 4, seed: 5 });

/** Real envoy training of `steps` full-batch steps on the two images; the update and the weights sent. */
async function envoyUpdate(training: Record<string, unknown>, steps: number): Promise<{ sent: FlatWeights; delta: FlatWeights; params: ReturnType<typeof paramsOfModel> }> {
  const model = buildModel(spec);
  const sent = readWeights(model);
  const params = paramsOfModel(model);
  await trainLocal(model, victims, { config: TrainingSchema.parse({ batch_size: 2, local_epochs: steps, ...training }) });
  const after = readWeights(model);
  model.dispose();
  return { sent, params, delta: { manifest: after.manifest, values: after.values.map((v, i) => v - sent.values[i]) } };
}

function trainableOfDelta(delta: FlatWeights): Float32Array[] {
  return trainableNames().map((name) => sliceNamed(delta, name)!);
}

for (const [name, training] of [
  ['plain SGD', { optimizer: 'sgd', momentum: 0, learning_rate: 0.01 }],
  ['SGD with momentum', { optimizer: 'sgd', momentum: 0.9, learning_rate: 0.01 }],
  ['Adam', { optimizer: 'adam', learning_rate: 0.001 }],
] as const) {
  test(`the multi-step simulation of ${name} reproduces the envoy's 3-step update`, async (t) => {
    const { delta, params } = await envoyUpdate(training, 3);
    const simulated = tf.tidy(() => simulateUpdate(
      { params, mode: 'train', imageShape: [28, 28, 1], batch: 2, numClasses: 2 },
      tf.tensor4d(victims.images, [2, 28, 28, 1]), oneHot(victims.labels, 2),
      { steps: 3, learningRate: training.learning_rate, optimizer: training.optimizer, momentum: 'momentum' in training ? training.momentum : undefined },
    ).map((u) => u.dataSync() as Float32Array));
    const real = trainableOfDelta(delta);
    const norm = (v: Float32Array[]) => Math.sqrt(v.reduce((s, a) => s + a.reduce((q, x) => q + x * x, 0), 0));
    const diff = norm(real.map((r, i) => r.map((x, j) => x - simulated[i][j])));
    t.true(norm(real) > 0, 'training moved the weights');
    t.true(diff / norm(real) < 1e-3, `relative difference ${diff / norm(real)}`);
  });
}

test('a one-step update reveals each batch-norm layer\'s batch mean and variance exactly', async (t) => {
  const { delta, params } = await envoyUpdate({ optimizer: 'sgd', momentum: 0, learning_rate: 0.01 }, 1);
  const observed = observedMoments(params, delta)!;
  t.truthy(observed, 'the update carries batch-norm statistics');
  const truth = tf.tidy(() => batchMoments(params, tf.tensor4d(victims.images, [2, 28, 28, 1])).map((m) => [m.mean.dataSync(), m.variance.dataSync()]));
  observed.forEach((m, i) => {
    for (const [got, want] of [[m.mean.dataSync(), truth[i][0]], [m.variance.dataSync(), truth[i][1]]]) {
      const worst = Math.max(...[...want].map((w, j) => Math.abs(got[j] - w) / (Math.abs(w) + 1e-3)));
      t.true(worst < 1e-3, `layer ${i}: relative error ${worst}`);
    }
  });
  // An update that never touched the statistics (zeros) carries no observation.
  t.is(observedMoments(params, { manifest: delta.manifest, values: new Float32Array(delta.values.length) }), undefined);
});
