/**
 * Faster gradients for kernels whose tfjs-core gradient is slow on tfjs-node, with the same values (and still
 * twice differentiable for the leakage lab: the comparison's gradient is zero, second-order.ts). Measured on a
 * [64, 28, 28, 64] activation (bench/RESULTS.md, "Where the training time goes"): ReLU's gradient as tfjs-core
 * builds it, dy * step(x), takes 25.7 ms; dy * cast(x > 0) takes 10.4 ms (tfjs-node's Step kernel is the slow part).
 * Registered once, by importing this module (core/model.ts does).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tf.ts';

const reluGrad: TF.GradConfig = {
  kernelName: 'Relu',
  inputsToSave: ['x'],
  gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as TF.Tensor, tf.cast(tf.greater(x, 0), 'float32')) }),
};

let registered = false;

export function registerFastGradients(): void {
  if (registered) return;
  registered = true;
  // Quietly replace tfjs-core's own (tfjs warns when a gradient is registered twice).
  if (tf.getGradient(reluGrad.kernelName)) tf.unregisterGradient(reluGrad.kernelName);
  tf.registerGradient(reluGrad);
}

registerFastGradients();
