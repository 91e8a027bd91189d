/**
 * The multi-step FedAvg attack (Geiping et al. 2020, section 6): the envoy ran K local SGD steps at rate η
 * on its B images and sent new weights; the director knows what it sent, so it sees Δ = w_K - w_0. The
 * attacker runs the same K steps on dummy images (differentiably: w_k depends on the dummies) and matches
 * its own Δ' to Δ by cosine distance + TV, with the Inverting Gradients optimizer.
 *
 * Plain SGD without momentum, full batch of the B images each step, as the issue's reference setting
 * (K = 4, B = 2, η = 1e-3). The project's envoys train with Adam by default: simulating Adam's moments
 * is not done here yet.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { type ConvNetParams, trainableOf, weightGradients, withTrainable } from '../functional-model.ts';
import { type AttackSetting, cosineDistance, oneHot, type Reconstruction, totalVariation } from './common.ts';
import { boxedSignedAdam, type IgOptions } from './inverting-gradients.ts';

export interface LocalSteps { steps: number; learningRate: number }

/** w_K - w_0 for K full-batch SGD steps on (x, labels): the trainable weights' update, as a tensor list. */
export function simulateUpdate(s: AttackSetting, x: TF.Tensor4D, labels: TF.Tensor2D, local: LocalSteps): TF.Tensor[] {
  const start = trainableOf(s.params);
  let params: ConvNetParams = s.params;
  let w = start;
  for (let k = 0; k < local.steps; k++) {
    const grads = weightGradients(params, x, labels, s.mode);
    w = w.map((t, i) => tf.sub(t, tf.mul(grads[i], local.learningRate)));
    params = withTrainable(params, w);
  }
  return w.map((t, i) => tf.sub(t, start[i]));
}

/** The victim's update (for tests and benches: the attacker only ever gets this list of tensors). */
export function observeUpdate(s: AttackSetting, images: Float32Array, labels: Int32Array, local: LocalSteps): TF.Tensor[] {
  return tf.tidy(() => simulateUpdate(s, tf.tensor4d(images, [s.batch, ...s.imageShape]), oneHot(labels, s.numClasses), local));
}

export function multiStepAttack(s: AttackSetting, observedUpdate: TF.Tensor[], labels: Int32Array, local: LocalSteps, o: IgOptions): Reconstruction {
  const y = oneHot(labels, s.numClasses);
  const objective = (x: TF.Tensor4D) => tf.add(cosineDistance(simulateUpdate(s, x, y, local), observedUpdate, o.cosine),
    tf.mul(o.tvWeight, totalVariation(x))) as TF.Scalar;
  const result = boxedSignedAdam(s, objective, labels, o);
  y.dispose();
  return result;
}
