import test from 'ava';
import { ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { buildModel } from '../ts/core/model.ts';
import { evaluate, trainLocal } from '../ts/core/training.ts';
import { readWeights } from '../ts/core/weights.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const train = subset(loadPneumoniaMnist(PNEUMONIAMNIST, 'train'), [...Array(400).keys()]);
const spec = ModelSpecSchema.parse({ width: 4, seed: 2 });

for (const optimizer of ['adam', 'sgd', 'adadelta'] as const) {
  test(`${optimizer}: local training runs the configured steps and changes the weights`, async (t) => {
    const model = buildModel(spec);
    const before = readWeights(model).values;
    const lr = optimizer === 'adadelta' ? 1.0 : optimizer === 'sgd' ? 0.05 : 0.003;
    const result = await trainLocal(model, train, { config: TrainingSchema.parse({ optimizer, learning_rate: lr, batch_size: 50, local_epochs: 1 }) });
    t.is(result.steps, 8);
    t.is(result.examples, 400);
    const after = readWeights(model).values;
    t.true(after.some((v, i) => v !== before[i]));
    t.true(Number.isFinite(result.meanLoss));
  });
}

test('training on real X-rays lowers the loss on them', async (t) => {
  const model = buildModel(spec);
  const before = evaluate(model, train).loss;
  await trainLocal(model, train, { config: TrainingSchema.parse({ learning_rate: 0.003, batch_size: 32, local_epochs: 3 }) });
  const after = evaluate(model, train);
  t.true(after.loss < before, `loss ${before} -> ${after.loss}`);
  t.true(after.roc_auc! > 0.8, `train AUC ${after.roc_auc!}`);
});

test('FedProx keeps local weights closer to the global model than plain local training', async (t) => {
  const drift = async (mu: number) => {
    const model = buildModel(spec);
    const start = readWeights(model).values;
    await trainLocal(model, train, { config: TrainingSchema.parse({ learning_rate: 0.01, batch_size: 50, local_epochs: 2, fedprox_mu: mu }) });
    const end = readWeights(model).values;
    return Math.sqrt(end.reduce((s, v, i) => s + (v - start[i]) ** 2, 0));
  };
  const plain = await drift(0);
  const prox = await drift(5);
  t.true(prox < plain, `drift with mu=5: ${prox}, without: ${plain}`);
});

test('the same seeds give the same trained weights', async (t) => {
  const run = async () => {
    const model = buildModel(spec);
    await trainLocal(model, train, { config: TrainingSchema.parse({ batch_size: 100, local_epochs: 1, seed: 5 }), seedSalt: 3 });
    return Array.from(readWeights(model).values);
  };
  t.deepEqual(await run(), await run());
});

test('fractional local epochs run that share of an epoch', async (t) => {
  const result = await trainLocal(buildModel(spec), train, { config: TrainingSchema.parse({ batch_size: 40, local_epochs: 0.5 }) });
  t.is(result.steps, 5);
});
