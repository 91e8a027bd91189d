/**
 * Group normalization (Wu & He, ECCV 2018) as a tfjs layer: each image's channels are normalized in groups
 * over its own spatial positions, then scaled and shifted per channel (gamma, beta). Nothing depends on the
 * other images of the batch and there are no moving statistics, which is what DP-SGD needs (De et al. 2022):
 * batch norm mixes the examples of a batch, so one example's clipped gradient would not bound its influence,
 * and its moving statistics would leave the envoy without noise. `model.normalization: group`.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tf.ts';

/** Keras' BatchNormalization default, kept for group norm so the two differ only in what they average. */
export const GROUP_NORM_EPSILON = 1e-3;

/** The largest divisor of `channels` not above 8: groups of 2+ channels at the project's widths. */
export function groupsFor(channels: number): number {
  for (let g = Math.min(8, channels); g > 1; g--) if (channels % g === 0) return g;
  return 1;
}

/** x normalized per image and group, before gamma and beta ([N, H, W, C]). */
export function groupNormalized(x: TF.Tensor4D, groups: number, epsilon = GROUP_NORM_EPSILON): TF.Tensor4D {
  const [n, h, w, c] = x.shape;
  const grouped = tf.reshape(x, [n, h, w, groups, c / groups]);
  const { mean, variance } = tf.moments(grouped, [1, 2, 4], true);
  return tf.reshape(tf.div(tf.sub(grouped, mean), tf.sqrt(tf.add(variance, epsilon))), [n, h, w, c]) as TF.Tensor4D;
}

export class GroupNormalization extends tf.layers.Layer {
  static className = 'GroupNormalization';
  private gamma?: TF.LayerVariable;
  private beta?: TF.LayerVariable;
  groups = 1;

  constructor(args: { name: string }) {
    super(args);
  }

  override build(inputShape: TF.Shape | TF.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as TF.Shape;
    const channels = shape[shape.length - 1];
    if (shape.length !== 4 || channels == null) throw new Error(`group normalization expects images [batch, H, W, C], got [${shape}]`);
    this.groups = groupsFor(channels);
    this.gamma = this.addWeight('gamma', [channels], 'float32', tf.initializers.ones());
    this.beta = this.addWeight('beta', [channels], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: TF.Shape | TF.Shape[]): TF.Shape | TF.Shape[] {
    return inputShape;
  }

  override call(inputs: TF.Tensor | TF.Tensor[]): TF.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TF.Tensor4D;
    return tf.add(tf.mul(groupNormalized(x, this.groups), this.gamma!.read()), this.beta!.read());
  }
}
tf.serialization.registerClass(GroupNormalization);
