/**
 * The multi-step FedAvg attack (Geiping et al. 2020, section 6): the envoy ran K local steps at rate η
 * on its B images and sent new weights; the director knows what it sent, so it sees Δ = w_K - w_0. The
 * attacker runs the same K steps on dummy images (differentiably: w_k depends on the dummies) and matches
 * its own Δ' to Δ by cosine distance + TV, with the Inverting Gradients optimizer.
 *
 * Full batch of the B images each step, as the reference setting (K = 4, B = 2, η = 1e-3). The
 * envoy's optimizer is simulated as tfjs implements it: plain SGD, SGD with momentum (tf.train.momentum)
 * or Adam (tf.train.adam, the envoys' default). Adam's first step is close to η·sign(g), whose derivative
 * in g nearly vanishes, so updates trained with Adam resist this attack far more than SGD ones (a
 * measured property of the optimizer, not a defense anyone designed).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { type ConvNetParams, trainableOf, weightGradients, withTrainable } from '../functional-model.ts';
import { type AttackSetting, cosineDistance, oneHot, type Reconstruction, totalVariation } from './common.ts';
import { boxedSignedAdam, type IgOptions } from './inverting-gradients.ts';

export interface LocalSteps {
  steps: number;
  learningRate: number;
  /** As the envoy's TrainingConfig names them; 'sgd' with momentum 0 is plain SGD. Default plain SGD. */
  optimizer?: 'sgd' | 'adam';
  momentum?: number;
}

/** tfjs's defaults (tf.train.adam: beta1 0.9, beta2 0.999, epsilon = the float32 backend's 1e-7). */
const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/** w_K - w_0 for K full-batch steps on (x, labels): the trainable weights' update, as a tensor list. */
export function simulateUpdate(s: AttackSetting, x: TF.Tensor4D, labels: TF.Tensor2D, local: LocalSteps): TF.Tensor[] {
  const start = trainableOf(s.params);
  const step = optimizerStep(local);
  let params: ConvNetParams = s.params;
  let w = start;
  for (let k = 1; k <= local.steps; k++) {
    w = step(w, weightGradients(params, x, labels, s.mode), k);
    params = withTrainable(params, w);
  }
  return w.map((t, i) => tf.sub(t, start[i]));
}

type Step = (w: TF.Tensor[], grads: TF.Tensor[], k: number) => TF.Tensor[];

/** One optimizer step as a pure function of the weights and gradients, keeping its state in the closure. */
function optimizerStep(local: LocalSteps): Step {
  const lr = local.learningRate;
  if (local.optimizer === 'adam') {
    let m: TF.Tensor[] = [];
    let v: TF.Tensor[] = [];
    return (w, grads, k) => {
      m = grads.map((g, i) => (k === 1 ? tf.mul(g, 1 - ADAM.beta1) : tf.add(tf.mul(m[i], ADAM.beta1), tf.mul(g, 1 - ADAM.beta1))));
      v = grads.map((g, i) => (k === 1 ? tf.mul(tf.square(g), 1 - ADAM.beta2) : tf.add(tf.mul(v[i], ADAM.beta2), tf.mul(tf.square(g), 1 - ADAM.beta2))));
      const [c1, c2] = [1 - ADAM.beta1 ** k, 1 - ADAM.beta2 ** k];
      // sqrt'(0) is infinite: a weight whose gradient is exactly 0 (a dead unit) would poison the attack's
      // gradient with NaN; a floor far below any real v keeps it finite without changing the step.
      return w.map((t, i) => tf.sub(t, tf.mul(lr, tf.div(tf.div(m[i], c1), tf.add(tf.sqrt(tf.add(tf.div(v[i], c2), 1e-30)), ADAM.epsilon)))));
    };
  }
  const momentum = local.optimizer === 'sgd' ? local.momentum ?? 0 : 0;
  let velocity: TF.Tensor[] = [];
  return (w, grads, k) => {
    // tf.train.momentum: accumulation = momentum * accumulation + g; w -= lr * accumulation.
    velocity = momentum > 0 && k > 1 ? grads.map((g, i) => tf.add(tf.mul(velocity[i], momentum), g)) : grads;
    return w.map((t, i) => tf.sub(t, tf.mul(velocity[i], lr)));
  };
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
