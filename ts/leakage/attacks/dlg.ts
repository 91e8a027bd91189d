/**
 * Deep Leakage from Gradients (Zhu et al., NeurIPS 2019): find images whose gradient matches the observed
 * one in squared L2, by L-BFGS (the paper's choice) or Adam. Labels come from iDLG (the paper's joint
 * soft-label optimization is what iDLG showed to be unnecessary and less reliable).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { lbfgs } from '../optim/lbfgs.ts';
import { type AttackSetting, clip01, dummyImages, l2Distance, modelGradients, oneHot, type Reconstruction } from './common.ts';

export interface DlgOptions {
  optimizer: 'lbfgs' | 'adam';
  iterations: number;
  /** Adam's step size (ignored by L-BFGS). */
  learningRate?: number;
  seed: number;
  /** L-BFGS line search; 'none' (PyTorch's default, which DLG used) by default: see optim/lbfgs.ts. */
  lineSearch?: 'armijo' | 'none';
  onIteration?: (iteration: number, loss: number) => void;
}

/** The DLG objective and its gradient w.r.t. the dummy images. */
export function dlgObjective(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array) {
  const y = oneHot(labels, s.numClasses);
  const loss = (x: TF.Tensor) => l2Distance(modelGradients(s, x as TF.Tensor4D, y), observed);
  return {
    valueAndGrad: (x: Float32Array | Float64Array): { value: number; grad: Float32Array } => tf.tidy(() => {
      const { value, grad } = tf.valueAndGrad(loss)(tf.tensor4d(Float32Array.from(x), [s.batch, ...s.imageShape]));
      return { value: value.dataSync()[0], grad: grad.dataSync() as Float32Array };
    }),
    dispose: () => y.dispose(),
  };
}

export function dlg(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, options: DlgOptions): Reconstruction {
  const started = performance.now();
  const objective = dlgObjective(s, observed, labels);
  const x0 = dummyImages(s, options.seed);
  let result: { x: ArrayLike<number>; value: number; iterations: number };
  if (options.optimizer === 'lbfgs') {
    const r = lbfgs((x) => {
      const { value, grad } = objective.valueAndGrad(x);
      return { value, grad: Float64Array.from(grad) };
    }, Float64Array.from(x0), { maxIterations: options.iterations, lineSearch: options.lineSearch ?? 'none', onIteration: options.onIteration });
    result = r;
  } else {
    result = adamDescent(objective.valueAndGrad, x0, options);
  }
  objective.dispose();
  return { images: clip01(result.x), labels, loss: result.value, iterations: result.iterations, seconds: (performance.now() - started) / 1000 };
}

/** Plain Adam on a flat vector (unconstrained, as DLG). */
function adamDescent(f: (x: Float32Array) => { value: number; grad: Float32Array }, x0: Float32Array, o: DlgOptions) {
  const lr = o.learningRate ?? 0.01;
  const x = Float32Array.from(x0);
  const m = new Float64Array(x.length);
  const v = new Float64Array(x.length);
  let value = Infinity;
  for (let t = 1; t <= o.iterations; t++) {
    const r = f(x);
    value = r.value;
    for (let i = 0; i < x.length; i++) {
      m[i] = 0.9 * m[i] + 0.1 * r.grad[i];
      v[i] = 0.999 * v[i] + 0.001 * r.grad[i] ** 2;
      x[i] -= (lr * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8);
    }
    o.onIteration?.(t, value);
  }
  return { x, value: f(x).value, iterations: o.iterations };
}
