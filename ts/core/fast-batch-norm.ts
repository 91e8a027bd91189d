/**
 * Batch normalization whose training-mode gradient is one fused formula instead of tfjs's op-by-op graph.
 *
 * tfjs-layers normalizes a training batch with tf.moments and tf.batchNorm, and tfjs differentiates both op by
 * op: about 20 full-size multiplies, subtractions, divisions and reductions per layer per step (bench/RESULTS.md,
 * "Where the training time goes": the largest part of the gap to PyTorch). With x̂ = (x − μ_B)/σ_B and
 * y = γ·x̂ + β over the batch's own statistics, the whole gradient is (per channel, N values each)
 *     ∂L/∂β = Σ dy,   ∂L/∂γ = Σ dy·x̂,   ∂L/∂x = γ/(σ_B·N) · (N·dy − ∂L/∂β − x̂·∂L/∂γ),
 * which is what PyTorch's and TensorFlow's fused kernels compute. Same weights, names, moving statistics,
 * epsilon and saved format as tfjs-layers' BatchNormalization (it is that class, with a training call of its
 * own); inference is the parent's. The leakage lab differentiates its own functional twin, so this gradient
 * never needs a second derivative.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tf.ts';

type BatchNormArgs = Parameters<typeof tf.layers.batchNormalization>[0];
type Kwargs = { [key: string]: unknown };

/** tfjs-layers' BatchNormalization class (taken from an instance: the package exports only its factory). */
const BatchNormalizationClass = tf.layers.batchNormalization({}).constructor as new (args: BatchNormArgs) => TF.layers.Layer;

interface BatchNormInternals {
  gamma: TF.LayerVariable;
  beta: TF.LayerVariable;
  movingMean: TF.LayerVariable;
  movingVariance: TF.LayerVariable;
  momentum: number;
  epsilon: number;
  axis: number;
}

class FastBatchNormalization extends BatchNormalizationClass {
  // Saved and loaded as tfjs-layers' own BatchNormalization: an exported model needs nothing of this file.
  static className = 'BatchNormalization';

  override call(inputs: TF.Tensor | TF.Tensor[], kwargs: Kwargs): TF.Tensor | TF.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const self = this as unknown as BatchNormInternals;
    // The fused path covers what the registry builds: channels last, every axis but the channels reduced.
    const channelsLast = self.axis === -1 || self.axis === x.rank - 1;
    if (!kwargs.training || x.rank !== 4 || !channelsLast) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = normalizeInTraining(x as TF.Tensor4D, self.gamma.read() as TF.Tensor1D, self.beta.read() as TF.Tensor1D, self.epsilon);
      // The moving statistics move as tfjs-layers moves them: moving -= (moving - batch) * (1 - momentum).
      for (const [variable, value] of [[self.movingMean, mean], [self.movingVariance, variance]] as const) {
        tf.tidy(() => { variable.write(tf.sub(variable.read(), tf.mul(tf.sub(variable.read(), value), 1 - self.momentum))); });
      }
      tf.dispose([mean, variance]);
      return y;
    });
  }
}

/**
 * γ·(x − μ)/√(σ² + ε) + β over the batch's own μ and σ², differentiated as one formula, and μ, σ² themselves
 * (for the moving statistics). They are computed inside the fused op, where tfjs records no gradient: the
 * formula for x already carries every path through them.
 */
function normalizeInTraining(x: TF.Tensor4D, gamma: TF.Tensor1D, beta: TF.Tensor1D, epsilon: number): { y: TF.Tensor4D; mean: TF.Tensor1D; variance: TF.Tensor1D } {
  let stats: { mean: TF.Tensor1D; variance: TF.Tensor1D } | undefined;
  const fused = tf.customGrad((...args: unknown[]) => {
    const [input, g, b, save] = args as [TF.Tensor4D, TF.Tensor1D, TF.Tensor1D, (t: TF.Tensor[]) => void];
    const { mean, variance } = tf.moments(input, [0, 1, 2]);
    stats = { mean: tf.keep(mean) as TF.Tensor1D, variance: tf.keep(variance) as TF.Tensor1D };
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const normalized = tf.mul(tf.sub(input, mean), invStd);
    save([normalized, invStd, g]);
    return {
      value: tf.add(tf.mul(normalized, g), b),
      gradFunc: (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [xhat, inv, scale] = saved;
        const count = dy.size / dy.shape[3]!;
        const dBeta = tf.sum(dy, [0, 1, 2]);
        const dGamma = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
        const centred = tf.sub(tf.sub(tf.mul(dy, count), dBeta), tf.mul(xhat, dGamma));
        return [tf.mul(centred, tf.div(tf.mul(scale, inv), count)), dGamma, dBeta];
      },
    };
  });
  const y = fused(x, gamma, beta) as TF.Tensor4D;
  return { y, ...stats! };
}

/** A drop-in for tf.layers.batchNormalization with the fused training gradient. */
export function fastBatchNormalization(args: BatchNormArgs): TF.layers.Layer {
  return new FastBatchNormalization(args);
}
