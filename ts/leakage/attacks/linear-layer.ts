/**
 * Linear-layer leakage, analytically (Phong et al. 2017; the first step of R-GAP, Zhu & Blaschko 2021). For
 * a dense layer y = f·W + b and one image, the weight gradient is the outer product f ⊗ δ with δ = dL/dy,
 * and the bias gradient is δ itself; so f = ∂L/∂W · δ / (δ·δ), exactly, whatever came before or after the
 * layer: the noise PRECODE samples, its KL term, the loss. No optimization, no prior.
 *
 * ConvNetBN has two such layers fed by the conv features: PRECODE's encoder (when the model has one) and
 * the classifier (fed by the features, or by PRECODE's decoded code). For a batch, a row of ∂L/∂W mixes the
 * images by their δ; the rows that one image dominates still give that image's features, which
 * `dominantRows` picks out (on ConvNetBN's two-class classifier no row is dominated: δ₁ = −δ₀ for every image).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { trainableNamesOf, type ConvNetParams } from '../functional-model.ts';

export interface LayerInput {
  /** The recovered input of the layer, [images, features]. */
  features: TF.Tensor2D;
  /** Which layer: 'precode/encoder' or 'classifier'. */
  layer: string;
  /** max |∂L/∂W − f ⊗ δ| / max |∂L/∂W|: zero for one image (a rank-one gradient); larger when images mix. */
  residual: number;
}

/** The dense layer whose input is the conv features: PRECODE's encoder when present, else the classifier. */
export function featureLayer(p: ConvNetParams): string {
  return p.precode ? 'precode/encoder' : 'classifier';
}

/** f = ∂L/∂W · δ / (δ·δ) for a dense layer of the observed gradient (trainable order of `p`). */
export function recoverLayerInput(p: ConvNetParams, observed: TF.Tensor[], layer = featureLayer(p)): LayerInput {
  const names = trainableNamesOf(p);
  const gW = observed[names.indexOf(`${layer}/kernel`)] as TF.Tensor2D;
  const gb = observed[names.indexOf(`${layer}/bias`)] as TF.Tensor1D;
  if (!gW || !gb) throw new Error(`the observation has no dense layer ${layer}`);
  return tf.tidy(() => {
    const delta = tf.reshape(gb, [1, -1]);
    const features = tf.div(tf.matMul(gW, delta, false, true), tf.sum(tf.square(gb)).add(1e-30)).reshape([1, -1]) as TF.Tensor2D;
    const rankOne = tf.matMul(features, delta, true, false);
    const residual = tf.div(tf.max(tf.abs(tf.sub(gW, rankOne))), tf.max(tf.abs(gW)).add(1e-30)).dataSync()[0];
    return { features: tf.keep(features), layer, residual };
  });
}

/**
 * For a batch: the B rows (output units) whose gradient is closest to rank one, each read as one image's
 * features. A row k of ∂L/∂W is Σᵢ δᵢₖ fᵢ; where one image's δ dominates, it is that image's f scaled.
 * Rows are ranked by |δₖ| and kept when their features differ from those already kept (cosine < 0.99).
 */
export function dominantRows(p: ConvNetParams, observed: TF.Tensor[], batch: number, layer = featureLayer(p)): TF.Tensor2D {
  const names = trainableNamesOf(p);
  const gW = observed[names.indexOf(`${layer}/kernel`)] as TF.Tensor2D;
  const gb = observed[names.indexOf(`${layer}/bias`)].dataSync() as Float32Array;
  const columns = tf.tidy(() => tf.transpose(gW).arraySync() as number[][]);
  const order = [...gb.keys()].filter((k) => Math.abs(gb[k]) > 1e-12).sort((a, b) => Math.abs(gb[b]) - Math.abs(gb[a]));
  const kept: number[][] = [];
  const cosine = (a: number[], b: number[]) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
    return ab / Math.sqrt(aa * bb + 1e-30);
  };
  for (const k of order) {
    if (kept.length === batch) break;
    const candidate = columns[k].map((v) => v / gb[k]);
    if (kept.every((f) => cosine(f, candidate) < 0.99)) kept.push(candidate);
  }
  while (kept.length < batch) kept.push(kept[kept.length - 1] ?? columns[0].map(() => 0));
  return tf.tensor2d(kept);
}
