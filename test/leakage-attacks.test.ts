import test from 'ava';
import { tf } from '../ts/core/tf.ts';
import { buildModel } from '../ts/core/model.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { paramsOfModel } from '../ts/leakage/functional-model.ts';
import { type AttackSetting, observeGradients } from '../ts/leakage/attacks/common.ts';
import { biasGradient, meanPrediction, recoverLabel, recoverLabels } from '../ts/leakage/attacks/idlg.ts';
import { lbfgs } from '../ts/leakage/optim/lbfgs.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const testSet = loadPneumoniaMnist(PNEUMONIAMNIST, 'test', 16);
const image = (i: number) => testSet.images.slice(i * 784, (i + 1) * 784);
const setting = (width: number, batch: number, mode: 'train' | 'eval' = 'eval'): AttackSetting => ({
  params: paramsOfModel(buildModel(ModelSpecSchema.parse({ width, seed: 3 }))), mode, imageShape: [28, 28, 1], batch, numClasses: 2,
});

test('L-BFGS minimizes the 50-dimensional Rosenbrock function', (t) => {
  const n = 50;
  const rosenbrock = (x: Float64Array) => {
    let value = 0;
    const grad = new Float64Array(n);
    for (let i = 0; i < n - 1; i++) {
      const a = x[i + 1] - x[i] ** 2;
      const b = 1 - x[i];
      value += 100 * a * a + b * b;
      grad[i] += -400 * a * x[i] - 2 * b;
      grad[i + 1] += 200 * a;
    }
    return { value, grad };
  };
  const r = lbfgs(rosenbrock, new Float64Array(n).fill(-1), { maxIterations: 1000 });
  t.true(r.value < 1e-10, `value ${r.value} after ${r.iterations} iterations`);
});

test('iDLG recovers the label of a single image from the classifier gradient', (t) => {
  const s = setting(4, 1);
  for (let i = 0; i < 16; i++) {
    const observed = observeGradients(s, image(i), Int32Array.of(testSet.labels[i]));
    t.is(recoverLabel(biasGradient(observed)), testSet.labels[i]);
    tf.dispose(observed);
  }
});

test('batch label recovery gets the label counts of batches of 4 (train-mode batch norm)', (t) => {
  const s = setting(4, 4, 'train');
  let correct = 0;
  for (let start = 0; start < 16; start += 4) {
    const images = testSet.images.slice(start * 784, (start + 4) * 784);
    const labels = testSet.labels.slice(start, start + 4);
    const observed = observeGradients(s, images, labels);
    const recovered = recoverLabels(biasGradient(observed), meanPrediction(s, 1), 4);
    correct += Number([...recovered].join() === [...labels].sort().join());
    tf.dispose(observed);
  }
  t.true(correct >= 3, `${correct} of 4 batches' label counts exact`);
});
