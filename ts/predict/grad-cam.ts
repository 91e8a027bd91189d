/**
 * Grad-CAM (Selvaraju et al. 2017): where the model looked. The last conv block's activations A_k (after its
 * ReLU) are weighted by the mean gradient of the pneumonia score over each channel, α_k = mean_ij ∂s/∂A_k,ij,
 * and cam = ReLU(Σ_k α_k A_k), scaled to [0, 1]. The score s is the log-odds of the positive class
 * (logit_1 − logit_0), which is what the softmax probability is monotone in.
 *
 * Works on the registry's Sequential models (model.ts): the model is applied layer by layer, split after
 * the last `relu<i>` layer, so only first-order gradients are needed (tfjs has no second-order ones).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';
import type { LayersModel } from '../core/model.ts';

export interface GradCam {
  /** Softmax probability of the positive class (index 1). */
  probability: number;
  /** [height, width] of the last conv feature map, values in [0, 1] (all 0 when nothing speaks for pneumonia). */
  cam: TF.Tensor2D;
}

/** One image x [1, H, W, C] through `model`, with its Grad-CAM map. The caller disposes `cam`. */
export function gradCam(model: LayersModel, x: TF.Tensor4D): GradCam {
  const layers = model.layers;
  const split = lastActivationIndex(model);
  const through = (input: TF.Tensor, from: number, to: number) => {
    let h = input;
    for (let i = from; i < to; i++) h = layers[i].apply(h, { training: false }) as TF.Tensor;
    return h;
  };
  return tf.tidy(() => {
    const features = through(x, 0, split + 1) as TF.Tensor4D;
    const logOdds = (f: TF.Tensor) => {
      const logits = through(f, split + 1, layers.length) as TF.Tensor2D;
      return logits.slice([0, 1], [1, 1]).sub(logits.slice([0, 0], [1, 1])).sum() as TF.Scalar;
    };
    const gradients = tf.grad(logOdds)(features) as TF.Tensor4D;
    const alpha = gradients.mean([1, 2], true); // [1, 1, 1, C]
    const raw = features.mul(alpha).sum(3).relu().squeeze([0]) as TF.Tensor2D;
    const peak = raw.max();
    const cam = tf.where(peak.greater(0), raw.div(peak.maximum(1e-12)), tf.zerosLike(raw)) as TF.Tensor2D;
    const logits = through(features, split + 1, layers.length) as TF.Tensor2D;
    const probability = tf.softmax(logits).dataSync()[1];
    return { probability, cam: tf.keep(cam) };
  });
}

function lastActivationIndex(model: LayersModel): number {
  for (let i = model.layers.length - 1; i >= 0; i--) if (/^relu\d+$/.test(model.layers[i].name)) return i;
  throw new Error(`Grad-CAM: model '${model.name}' has no conv block activation (relu<i>) to explain`);
}
