/**
 * Batch-norm statistics as a second observation. An update carries the batch-norm running statistics
 * next to the gradients: after one training step moving' = m * moving + (1 - m) * batch statistic, so the
 * director, who knows what it sent, reads off the mean and variance of every batch-norm layer's input on
 * the envoy's batch exactly (the leak "See through Gradients", Yin et al. CVPR 2021, exploits with a
 * prior). It matters most for a single image in training mode: the gradient alone is then nearly
 * blind to the image's brightness and contrast (batch norm normalizes them away), and layer 0's statistics
 * pin them down.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { BN_MOMENTUM } from '../../core/model.ts';
import { sliceNamed, type FlatWeights } from '../../core/weights.ts';
import { aggregateMoments, batchMoments, type BatchMoments, type ConvNetParams } from '../functional-model.ts';

/** The batch statistics of a one-step update, or undefined if the update does not carry them. */
export function observedMoments(sent: ConvNetParams, delta: FlatWeights): BatchMoments[] | undefined {
  const moments: BatchMoments[] = [];
  for (let i = 0; i < sent.convs.length; i++) {
    const [dm, dv] = [sliceNamed(delta, `bn${i}/moving_mean`), sliceNamed(delta, `bn${i}/moving_variance`)];
    if (!dm || !dv) return undefined;
    // batch = moving + delta / (1 - m)
    const undo = (moving: TF.Tensor1D, d: Float32Array) => tf.tidy(() => tf.add(moving, tf.mul(tf.tensor1d(d), 1 / (1 - BN_MOMENTUM)))) as TF.Tensor1D;
    moments.push({ mean: undo(sent.movingMeans[i], dm), variance: undo(sent.movingVars[i], dv) });
  }
  // An update where local training never touched the statistics (all zero) carries no such observation.
  return moments.some((m, i) => tf.tidy(() => tf.any(tf.notEqual(m.mean, sent.movingMeans[i])).dataSync()[0])) ? moments : undefined;
}

/**
 * Relative squared distance between the dummy batch's statistics and the observed ones, summed over layers.
 * For a secure aggregate the observed ones are the envoys' statistics mixed by their weights, and so are the dummy's.
 */
export function momentsDistance(p: ConvNetParams, x: TF.Tensor4D, target: BatchMoments[], aggregate?: { weights: number[]; groupSize: number }): TF.Scalar {
  const dummy = aggregate ? aggregateMoments(p, x, aggregate) : batchMoments(p, x);
  const rel = (a: TF.Tensor1D, b: TF.Tensor1D) => tf.div(tf.sum(tf.squaredDifference(a, b)), tf.add(tf.sum(tf.square(b)), 1e-12));
  return tf.addN(dummy.flatMap((m, i) => [rel(m.mean, target[i].mean), rel(m.variance, target[i].variance)])) as TF.Scalar;
}
