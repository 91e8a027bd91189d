/**
 * What every gradient-inversion attack shares: what the attacker knows (the weights it sent, the
 * architecture, the observed gradient or update), the gradient-distance functions, image priors, and a
 * seeded dummy-image start. The true images never enter here: they are only for scoring (run.ts).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { aggregateGradients, type BnMode, type ConvNetParams, weightGradients } from '../functional-model.ts';

export interface AttackSetting {
  /** The weights the attacker (the director) sent to the envoy. */
  params: ConvNetParams;
  /** How the envoy's batch norm ran: 'train' (batch statistics) as in local training. */
  mode: BnMode;
  /** [H, W, C] of one image, and how many images the envoy used. */
  imageShape: [number, number, number];
  batch: number;
  numClasses: number;
  /**
   * Set when the observation is a secure aggregate: envoy e trained on images [e·k, (e+1)·k) (k = groupSize)
   * and FedAvg weighed its update by weights[e] (the director knows both). The attack then models
   * Σₑ wₑ · gradient(batchₑ), each envoy's batch with its own batch-norm statistics.
   */
  aggregate?: { weights: number[]; groupSize: number };
}

/** The gradient the observation holds for a dummy batch: of the joint batch, or the weighted aggregate. */
export function modelGradients(s: AttackSetting, x: TF.Tensor4D, labels: TF.Tensor2D): TF.Tensor[] {
  return s.aggregate ? aggregateGradients(s.params, x, labels, s.aggregate, s.mode) : weightGradients(s.params, x, labels, s.mode);
}

export interface Reconstruction {
  /** B * H * W * C pixels in [0, 1] (clipped for scoring where the attack is unconstrained). */
  images: Float32Array;
  labels: Int32Array;
  /** The attack's own final loss (what restarts are ranked by). */
  loss: number;
  /**
   * Feature inversion only: per image, whether its features were matched to float32 precision. Only then do the
   * features pin the image's brightness and contrast (through batch norm's epsilon and the padded borders).
   */
  exact?: boolean[];
  iterations: number;
  seconds: number;
}

export function oneHot(labels: Int32Array, numClasses: number): TF.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses).cast('float32') as TF.Tensor2D);
}

/** The envoy's gradient on a batch: what a single-step update reveals (victim side; for tests and benches). */
export function observeGradients(s: AttackSetting, images: Float32Array, labels: Int32Array): TF.Tensor[] {
  return tf.tidy(() => modelGradients(s, tf.tensor4d(images, [s.batch, ...s.imageShape]), oneHot(labels, s.numClasses)));
}

/** DLG's distance: squared L2 between gradients, summed over layers. */
export function l2Distance(a: TF.Tensor[], b: TF.Tensor[]): TF.Scalar {
  return tf.addN(a.map((t, i) => tf.sum(tf.squaredDifference(t, b[i])))) as TF.Scalar;
}

/**
 * Inverting Gradients' distance: 1 - cosine similarity. Geiping et al.'s reference code (inversefed) takes
 * one cosine over all layers' gradients together ('global'); 'per-layer' sums 1 - cos over layers.
 */
export function cosineDistance(a: TF.Tensor[], b: TF.Tensor[], how: 'global' | 'per-layer' = 'global'): TF.Scalar {
  if (how === 'per-layer') {
    return tf.addN(a.map((t, i) => tf.sub(1, tf.div(tf.sum(tf.mul(t, b[i])), tf.mul(tf.norm(t), tf.norm(b[i])).add(1e-12))))) as TF.Scalar;
  }
  const dotAll = tf.addN(a.map((t, i) => tf.sum(tf.mul(t, b[i]))));
  const na = tf.sqrt(tf.addN(a.map((t) => tf.sum(tf.square(t)))));
  const nb = tf.sqrt(tf.addN(b.map((t) => tf.sum(tf.square(t)))));
  return tf.sub(1, tf.div(dotAll, tf.mul(na, nb).add(1e-12))) as TF.Scalar;
}

/** Anisotropic total variation, as inversefed: mean |horizontal differences| + mean |vertical differences|. */
export function totalVariation(x: TF.Tensor4D): TF.Scalar {
  const [, h, w] = x.shape;
  const dx = tf.sub(tf.slice(x, [0, 0, 1, 0], [-1, h, w - 1, -1]), tf.slice(x, [0, 0, 0, 0], [-1, h, w - 1, -1]));
  const dy = tf.sub(tf.slice(x, [0, 1, 0, 0], [-1, h - 1, w, -1]), tf.slice(x, [0, 0, 0, 0], [-1, h - 1, w, -1]));
  return tf.add(tf.mean(tf.abs(dx)), tf.mean(tf.abs(dy))) as TF.Scalar;
}

/** A reproducible dummy batch, uniform in [0, 1]. */
export function dummyImages(s: AttackSetting, seed: number): Float32Array {
  return tf.tidy(() => tf.randomUniform([s.batch, ...s.imageShape], 0, 1, 'float32', seed).dataSync() as Float32Array);
}

export function clip01(values: ArrayLike<number>): Float32Array {
  return Float32Array.from(values, (v) => Math.min(1, Math.max(0, v)));
}
