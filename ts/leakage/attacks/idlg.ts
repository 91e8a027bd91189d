/**
 * Label recovery from the classifier's gradient (iDLG, Zhao et al. 2020) and a batch variant.
 *
 * With softmax cross-entropy, the classifier bias gradient is mean_n(p_n - y_n): for one image only the
 * true class's entry is negative (iDLG states it on the weight rows; with non-negative features — ReLU then
 * max-pool here — the kernel column and the bias have the same sign). For a batch of B, entry j is
 * mean(p_j) - count_j / B, so count_j ≈ B (p̄_j - g_j) with p̄ the model's mean prediction, which the
 * attacker estimates on dummy inputs (as in LLG/iLRF-style label-count attacks).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { forward } from '../functional-model.ts';
import type { AttackSetting } from './common.ts';

/** Single image: the class whose classifier gradient is negative (the most negative, to be robust). */
export function recoverLabel(biasGrad: Float32Array): number {
  let best = 0;
  for (let j = 1; j < biasGrad.length; j++) if (biasGrad[j] < biasGrad[best]) best = j;
  return best;
}

/** Batch: label counts from the bias gradient and an estimate of the mean prediction; labels in class order. */
export function recoverLabels(biasGrad: Float32Array, meanProbs: Float32Array, batch: number): Int32Array {
  if (batch === 1) return Int32Array.of(recoverLabel(biasGrad));
  const estimate = [...biasGrad].map((g, j) => batch * (meanProbs[j] - g));
  const counts = estimate.map((e) => Math.max(0, Math.floor(e)));
  // Hand out what rounding down left over to the largest remainders, so counts sum to the batch size.
  const order = estimate.map((e, j) => [e - Math.floor(e), j]).sort((a, b) => b[0] - a[0]).map(([, j]) => j);
  for (let k = 0, left = batch - counts.reduce((a, b) => a + b, 0); left > 0; k++, left--) counts[order[k % order.length]]++;
  for (let k = 0, extra = counts.reduce((a, b) => a + b, 0) - batch; extra > 0; k++) {
    const j = order[order.length - 1 - (k % order.length)];
    if (counts[j] > 0) { counts[j]--; extra--; }
  }
  return Int32Array.from(counts.flatMap((c, j) => Array(c).fill(j)));
}

/** The model's mean softmax over seeded uniform-noise images: the attacker's stand-in for p̄. */
export function meanPrediction(s: AttackSetting, seed: number, samples = 16): Float32Array {
  return tf.tidy(() => {
    const x = tf.randomUniform([samples, ...s.imageShape], 0, 1, 'float32', seed) as TF.Tensor4D;
    return tf.mean(tf.softmax(forward(s.params, x, s.mode)), 0).dataSync() as Float32Array;
  });
}

/** The classifier bias gradient from the observed gradient list (the last tensor, in trainableOf order). */
export function biasGradient(observed: TF.Tensor[]): Float32Array {
  return observed[observed.length - 1].dataSync() as Float32Array;
}

/**
 * Every label multiset of a batch, each in class order: for a small batch, few enough to try them all.
 * (B = 2, two classes: {0,0}, {0,1}, {1,1}.)
 */
export function labelCandidates(batch: number, numClasses: number): Int32Array[] {
  const out: Int32Array[] = [];
  const walk = (prefix: number[], from: number) => {
    if (prefix.length === batch) { out.push(Int32Array.from(prefix)); return; }
    for (let c = from; c < numClasses; c++) walk([...prefix, c], c);
  };
  walk([], 0);
  return out;
}
