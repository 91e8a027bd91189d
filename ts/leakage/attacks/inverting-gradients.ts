/**
 * Inverting Gradients (Geiping et al., NeurIPS 2020): minimize 1 - cosine(gradient of dummy, observed) +
 * TV prior with Adam on the *signed* gradient (as their reference code, inversefed), step decay by 10x at
 * 3/8, 5/8 and 7/8 of the iterations, pixels kept in the box [0, 1], several random restarts keeping the
 * one with the lowest attack loss. The same loop serves the multi-step attack through `objective`.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import type { BatchMoments } from '../functional-model.ts';
import { momentsDistance } from './bn-statistics.ts';
import { type AttackSetting, cosineDistance, dummyImages, modelGradients, oneHot, type Reconstruction, totalVariation } from './common.ts';

export interface IgOptions {
  iterations: number;
  restarts: number;
  learningRate: number;
  tvWeight: number;
  seed: number;
  cosine?: 'global' | 'per-layer';
  /** Observed batch-norm statistics (bn-statistics.ts) and the weight of matching them. */
  bnStatistics?: { target: BatchMoments[]; weight: number };
  /** Pixel box (default [0, 1]); feature inversion searches a wider one, since its features hide the scale. */
  box?: [number, number];
  /** Where restart 0 starts (default: uniform noise like the others), e.g. the training set's mean image. */
  start?: Float32Array;
  onIteration?: (restart: number, iteration: number, loss: number) => void;
}

export const IG_DEFAULTS: Omit<IgOptions, 'seed'> = { iterations: 2000, restarts: 1, learningRate: 0.1, tvWeight: 1e-4 };

/** The attack loss of a dummy batch: a differentiable function of the images. */
export type AttackObjective = (x: TF.Tensor4D) => TF.Scalar;

export function igObjective(s: AttackSetting, observed: TF.Tensor[], labels: TF.Tensor2D, o: IgOptions): AttackObjective {
  return (x) => {
    const loss = tf.add(cosineDistance(modelGradients(s, x, labels), observed, o.cosine), tf.mul(o.tvWeight, totalVariation(x)));
    const bn = o.bnStatistics;
    return (bn ? tf.add(loss, tf.mul(bn.weight, momentsDistance(s.params, x, bn.target, s.aggregate))) : loss) as TF.Scalar;
  };
}

export function invertingGradients(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, o: IgOptions): Reconstruction {
  const y = oneHot(labels, s.numClasses);
  const result = boxedSignedAdam(s, igObjective(s, observed, y, o), labels, o);
  y.dispose();
  return result;
}

/** Restarts of signed Adam in the box [0, 1]; the best restart by its own final loss wins. */
export function boxedSignedAdam(s: AttackSetting, objective: AttackObjective, labels: Int32Array, o: IgOptions): Reconstruction {
  const started = performance.now();
  let best: { images: Float32Array; loss: number } | null = null;
  for (let restart = 0; restart < o.restarts; restart++) {
    const run = oneRestart(s, objective, o, restart);
    if (!best || run.loss < best.loss) best = run;
  }
  return { images: best!.images, labels, loss: best!.loss, iterations: o.iterations * o.restarts, seconds: (performance.now() - started) / 1000 };
}

function oneRestart(s: AttackSetting, objective: AttackObjective, o: IgOptions, restart: number) {
  const shape: [number, number, number, number] = [s.batch, ...s.imageShape];
  let x = tf.tensor4d(restart === 0 && o.start ? o.start : dummyImages(s, o.seed * 1009 + restart), shape);
  let m: TF.Tensor4D = tf.zerosLike(x);
  let v: TF.Tensor4D = tf.zerosLike(x);
  const milestones = [3 / 8, 5 / 8, 7 / 8].map((f) => Math.floor(f * o.iterations));
  const valueAndGrad = tf.valueAndGrad(objective as (x: TF.Tensor) => TF.Scalar);
  const [lo, hi] = o.box ?? [0, 1];
  for (let t = 1; t <= o.iterations; t++) {
    const lr = o.learningRate * 0.1 ** milestones.filter((k) => t > k).length;
    const [nx, nm, nv, loss] = tf.tidy(() => {
      const { value, grad } = valueAndGrad(x);
      const g = tf.sign(grad);
      const m1 = tf.add(tf.mul(m, 0.9), tf.mul(g, 0.1));
      const v1 = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(g), 0.001));
      const stepDir = tf.div(tf.div(m1, 1 - 0.9 ** t), tf.add(tf.sqrt(tf.div(v1, 1 - 0.999 ** t)), 1e-8));
      return [tf.clipByValue(tf.sub(x, tf.mul(stepDir, lr)), lo, hi) as TF.Tensor4D, m1 as TF.Tensor4D, v1 as TF.Tensor4D, value];
    });
    tf.dispose([x, m, v]);
    [x, m, v] = [nx as TF.Tensor4D, nm as TF.Tensor4D, nv as TF.Tensor4D];
    if (o.onIteration && (t % 100 === 0 || t === o.iterations)) o.onIteration(restart, t, loss.dataSync()[0]);
    loss.dispose();
  }
  const finalLoss = tf.tidy(() => objective(x).dataSync()[0]);
  const images = x.dataSync() as Float32Array;
  tf.dispose([x, m, v]);
  return { images, loss: finalLoss };
}
