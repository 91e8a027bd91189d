/**
 * A crafted-weights check, in the spirit of SEER's disaggregation signal-to-noise ratio (Garov et al., ICLR
 * 2024): before training, the envoy measures on a batch of its own images how far single images dominate the
 * gradient of each dense layer, the layers whose gradients give a dominated image back exactly (linear-layer
 * leakage: a row of ∂L/∂W that one image dominates is that image's input, scaled). A director that crafts
 * weights to isolate images in a batch or a secure sum has to make some image dominate; an honest model's
 * gradient is shared out among the batch.
 *
 * For a dense layer y = a·W + b, one image's weight gradient is the outer product aᵢ ⊗ δᵢ (δᵢ = ∂Lᵢ/∂yᵢ),
 * whose norm is ‖aᵢ‖·‖δᵢ‖, exactly and cheaply. The layer's dominance is
 *     D = maxᵢ ‖aᵢ‖‖δᵢ‖ / Σ_{j≠i} ‖aⱼ‖‖δⱼ‖
 * (sums of norms, not the norm of the sum: a trained model's per-image gradients cancel in the sum, which
 * must not look like dominance). D = 1 means one image holds half the layer's gradient; honest models
 * measured stayed below 2 (bench/crafted-weights.bench.ts).
 */
import type * as TF from '@tensorflow/tfjs';
import type { TrainTask } from '../../core/messages.ts';
import type { ImageDataset } from '../../core/data/dataset.ts';
import { decode, encodeStats, klDivergence } from '../../core/defenses/precode.ts';
import { tf } from '../../core/tf.ts';
import type { LayersModel } from '../../core/model-types.ts';
import { convFeatures, disposeParams, paramsOfModel, type ConvNetParams } from '../../leakage/functional-model.ts';
import type { DirectorRefusal } from './cohort.ts';

/**
 * Above 5, one image holds more than 5/6 of a dense layer's gradient, the others next to nothing: refused.
 * Measured on batches of 32 (bench/crafted-weights.bench.ts): honest models reached 1.81 (a confidently
 * misclassified image stands out once the rest are learnt) over whole runs of both architectures; a gate
 * that lets one image through gives tens to infinity. A false refusal costs a round (the others then lack
 * the hospital for their cohort), so the margin is wide.
 */
export const MAX_DOMINANCE = 5;
/** The batch the check measures on: the limit is calibrated on 32 images (fewer images share less). */
export const CHECK_BATCH = 32;

export interface LayerDominance { layer: string; dominance: number }

/** Each dense layer's dominance on `batch` (training-mode batch norm, as the envoy trains). */
export function gradientDominance(model: LayersModel, batch: ImageDataset, beta = 0): LayerDominance[] {
  const p = paramsOfModel(model);
  let out: LayerDominance[] = [];
  try {
    // Nothing to keep but numbers: every tensor of the measurement is freed by the tidy.
    tf.tidy(() => { out = denseLayerDominance(p, batch, beta); });
    return out;
  } finally {
    disposeParams(p);
  }
}

function denseLayerDominance(p: ConvNetParams, batch: ImageDataset, beta: number): LayerDominance[] {
  const [h, w, c] = batch.sampleShape;
  const x = tf.tensor4d(batch.images, [batch.labels.length, h, w, c]);
  const y = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), p.denseKernel.shape[1]).cast('float32') as TF.Tensor2D;
  const features = convFeatures(p, x, 'train');
  // Losses are summed over the batch (not averaged), so each row of a gradient is one image's own.
  const crossEntropy = (logits: TF.Tensor2D) => tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)))) as TF.Scalar;
  const head = (a: TF.Tensor2D) => tf.add(tf.matMul(a, p.denseKernel), p.denseBias) as TF.Tensor2D;
  const gradientAt = (loss: (t: TF.Tensor2D) => TF.Scalar, at: TF.Tensor2D) => tf.grad((t: TF.Tensor) => loss(t as TF.Tensor2D))(at);
  if (!p.precode) return [dominanceOf('classifier', features, gradientAt(crossEntropy, head(features)))];
  // PRECODE: the code's mean stands for the code (the envoy's noise is private and zero-mean).
  const pre = p.precode;
  const encoded = tf.add(tf.matMul(features, pre.encoderKernel), pre.encoderBias) as TF.Tensor2D;
  const { mu } = encodeStats(features, pre.encoderKernel, pre.encoderBias);
  const decoded = decode(mu, pre.decoderKernel, pre.decoderBias);
  const fromEncoded = (e: TF.Tensor2D) => {
    const k = e.shape[1] / 2;
    const stats = { mu: tf.slice(e, [0, 0], [-1, k]) as TF.Tensor2D, std: tf.softplus(tf.slice(e, [0, k], [-1, k])) as TF.Tensor2D };
    // The KL term is a batch mean in the training loss: times the batch size, a sum like the cross-entropy.
    return tf.add(crossEntropy(head(decode(stats.mu, pre.decoderKernel, pre.decoderBias))), tf.mul(beta * batch.labels.length, klDivergence(stats))) as TF.Scalar;
  };
  return [
    dominanceOf('precode/encoder', features, gradientAt(fromEncoded, encoded)),
    dominanceOf('precode/decoder', mu, gradientAt((d) => crossEntropy(head(d)), decoded)),
    dominanceOf('classifier', decoded, gradientAt(crossEntropy, head(decoded))),
  ];
}

/** D of one dense layer from its inputs aᵢ and output gradients δᵢ (one row per image). */
function dominanceOf(layer: string, inputs: TF.Tensor2D, outputGradients: TF.Tensor): LayerDominance {
  const norms = tf.mul(tf.norm(inputs, 'euclidean', 1), tf.norm(outputGradients, 'euclidean', 1)).dataSync();
  let max = 0;
  let total = 0;
  for (const n of norms) { total += n; max = Math.max(max, n); }
  const rest = total - max;
  return { layer, dominance: rest > 0 ? max / rest : max > 0 ? Infinity : 0 };
}

/** The check at the model: refused when a dense layer's gradient on this batch is dominated by one image. */
export function craftedWeightsProblem(model: LayersModel, batch: ImageDataset, task: TrainTask, limit = MAX_DOMINANCE): DirectorRefusal | undefined {
  const beta = task.model.precode?.enabled ? task.model.precode.beta : 0;
  const worst = gradientDominance(model, batch, beta).reduce((a, b) => (b.dominance > a.dominance ? b : a));
  if (!(worst.dominance > limit)) return undefined;
  return {
    rule: 'honest_director.crafted_weights',
    reason: `on a batch of this hospital's images, one image dominates the gradient of ${worst.layer} ` +
      `(${worst.dominance.toFixed(2)} times the others together, limit ${limit}): weights crafted to single images out`,
  };
}
