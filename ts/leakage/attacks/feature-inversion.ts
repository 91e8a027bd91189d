/**
 * From a layer's input back to the X-ray: find the image whose conv features are the recovered ones
 * (linear-layer.ts). The features fix the image up to a positive scale, almost: training-mode batch norm
 * divides each channel by √(var + ε), so scaling the image by c changes the features only through ε.
 * That small term is all that tells the scale (no prior needed), and three steps use it:
 *   1. signed Adam (as Inverting Gradients) on the relative feature distance, in a box wide enough for the
 *      scale to come out wrong without clipping the structure;
 *   2. a one-dimensional search over the scale c of that image, where the ε term has its minimum;
 *   3. L-BFGS (float64 steps) from there, to the precision float32 features allow.
 * Batch-norm statistics an update reveals (bn-statistics.ts) join the objective when the attacker has them.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { convFeatures, type BatchMoments } from '../functional-model.ts';
import { lbfgs } from '../optim/lbfgs.ts';
import { momentsDistance } from './bn-statistics.ts';
import { clip01, type AttackSetting, type Reconstruction } from './common.ts';
import { boxedSignedAdam, type AttackObjective, type IgOptions } from './inverting-gradients.ts';

export interface FeatureInversionOptions extends IgOptions {
  /** L-BFGS iterations after the scale search (0: none). */
  polishIterations: number;
}

/** Measured (ConvNetBN, one image): restarts that reach the truth end below 1e-12; stuck ones stay above 1e-5. */
const EXACT = 1e-10;

/** Width 32 finds every image tried with one restart; width 16 two of three with one, all tried with four. */
export const FEATURE_INVERSION_DEFAULTS = { iterations: 2000, restarts: 4, learningRate: 0.1, tvWeight: 0, polishIterations: 600 };

export function featureObjective(s: AttackSetting, target: TF.Tensor2D, bn?: { target: BatchMoments[]; weight: number }): AttackObjective {
  const scale = tf.tidy(() => tf.sum(tf.square(target)).add(1e-30));
  return (x) => {
    const match = tf.div(tf.sum(tf.squaredDifference(convFeatures(s.params, x, s.mode), target)), scale);
    return (bn ? tf.add(match, tf.mul(bn.weight, momentsDistance(s.params, x, bn.target))) : match) as TF.Scalar;
  };
}

/** Restarts (each: Adam, then scale search and polish twice); the lowest final feature distance wins. */
export function invertFeatures(s: AttackSetting, target: TF.Tensor2D, labels: Int32Array, o: FeatureInversionOptions): Reconstruction {
  const started = performance.now();
  const objective = featureObjective(s, target, o.bnStatistics);
  const shape: [number, number, number, number] = [s.batch, ...s.imageShape];
  const lossAt = (x: Float32Array) => tf.tidy(() => objective(tf.tensor4d(x, shape)).dataSync()[0]);
  let best: { images: Float32Array; loss: number } | undefined;
  for (let restart = 0; restart < o.restarts; restart++) {
    // The box is wide: an image found at the wrong scale must not lose its bright pixels to clipping.
    const start = restart === 0 ? o.start : undefined;
    let x = boxedSignedAdam(s, objective, labels, { ...o, restarts: 1, seed: o.seed * 31 + restart, box: [0, 4], start }).images;
    let loss = lossAt(x);
    for (let cycle = 0; cycle < 2; cycle++) {
      x = bestScale(x, lossAt);
      if (o.polishIterations > 0) ({ images: x, loss } = polish(objective, x, shape, Math.ceil(o.polishIterations / 2)));
      else loss = lossAt(x);
    }
    if (!best || loss < best.loss) best = { images: x, loss };
    if (best.loss < EXACT) break; // found to float32 precision: no restart can do better
  }
  return {
    images: clip01(best!.images), labels, loss: best!.loss,
    iterations: o.restarts * (o.iterations + o.polishIterations), seconds: (performance.now() - started) / 1000,
  };
}

/** Golden-section search of log c in [1/20, 20] for the scale whose features fit best. */
function bestScale(images: Float32Array, lossAt: (x: Float32Array) => number): Float32Array {
  const at = (logC: number) => lossAt(images.map((v) => v * Math.exp(logC)));
  let [a, b] = [Math.log(1 / 20), Math.log(20)];
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let [fc, fd] = [at(c), at(d)];
  for (let i = 0; i < 60; i++) {
    if (fc < fd) { b = d; d = c; fd = fc; c = b - g * (b - a); fc = at(c); } else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = at(d); }
  }
  const best = Math.exp((a + b) / 2);
  return images.map((v) => v * best);
}

function polish(objective: AttackObjective, start: Float32Array, shape: [number, number, number, number], iterations: number) {
  const valueAndGrad = tf.valueAndGrad(objective as (x: TF.Tensor) => TF.Scalar);
  const f = (x: Float64Array) => {
    const { value, grad } = tf.tidy(() => {
      const { value: v, grad: g } = valueAndGrad(tf.tensor4d(Float32Array.from(x), shape));
      return { value: v.dataSync()[0], grad: g.dataSync() as Float32Array };
    });
    return { value, grad: Float64Array.from(grad) };
  };
  const result = lbfgs(f, Float64Array.from(start), { maxIterations: iterations, lineSearch: 'armijo', history: 50, gradientTolerance: 1e-14 });
  return { images: Float32Array.from(result.x), loss: result.value };
}
