/**
 * Batch normalization whose training step is one fused op instead of tfjs's op-by-op graph: TensorFlow's own
 * FusedBatchNorm / FusedBatchNormGrad kernels on tfjs-node, else one formula in tfjs ops.
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
import { createRequire } from 'node:module';
import { backendName, tf } from './tf.ts';

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
 * γ·(x − μ)/√(σ² + ε) + β over the batch's own μ and σ² and its gradient: TensorFlow's own fused kernels
 * (FusedBatchNorm and FusedBatchNormGrad, oneDNN on the CPU) where the backend is native TensorFlow, else the
 * formula in tfjs ops. Returns the batch's μ and (biased, as tf.moments) σ² too, for the moving statistics.
 */
export function normalizeInTraining(x: TF.Tensor4D, gamma: TF.Tensor1D, beta: TF.Tensor1D, epsilon: number, kernels = batchNormKernels) {
  return kernels === 'native' && nativeKernels ? normalizeNatively(nativeKernels, x, gamma, beta, epsilon) : normalizeWithOps(x, gamma, beta, epsilon);
}

interface NativeBackend {
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: TF.Tensor[], outputs: number): TF.Tensor[];
  binding: { TF_ATTR_FLOAT: number; TF_ATTR_STRING: number; TF_ATTR_BOOL: number };
}
interface NativeKernels { backend: NativeBackend; typeAttr: (name: string, dtype: string) => unknown }

/**
 * tfjs-node's way of running a TensorFlow op by name, where it is the backend in use. Not on tfjs-node-gpu:
 * cuDNN keeps other saved statistics than the CPU kernel, and no GPU here could check them; the formula in
 * tfjs ops is right on any backend. SECFLOW_BATCH_NORM_KERNELS=ops picks the formula everywhere (benches).
 */
const nativeKernels: NativeKernels | undefined = (() => {
  if (backendName !== 'tfjs-node' || tf.getBackend() !== 'tensorflow' || process.env.SECFLOW_BATCH_NORM_KERNELS === 'ops') return undefined;
  try {
    const internals = createRequire(import.meta.url)('@tensorflow/tfjs-node/dist/nodejs_kernel_backend') as { createTensorsTypeOpAttr: NativeKernels['typeAttr'] };
    return { backend: tf.backend() as unknown as NativeBackend, typeAttr: internals.createTensorsTypeOpAttr };
  } catch {
    return undefined; // another tfjs-node layout: the formula in tfjs ops serves
  }
})();

/** Which implementation trains here: TensorFlow's fused kernels, or the formula in tfjs ops. */
export const batchNormKernels: 'native' | 'ops' = nativeKernels ? 'native' : 'ops';

function normalizeNatively(k: NativeKernels, x: TF.Tensor4D, gamma: TF.Tensor1D, beta: TF.Tensor1D, epsilon: number) {
  const attrs = [
    k.typeAttr('T', x.dtype),
    { name: 'epsilon', type: k.backend.binding.TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: k.backend.binding.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: k.backend.binding.TF_ATTR_BOOL, value: true },
  ];
  let stats: { mean: TF.Tensor1D; variance: TF.Tensor1D } | undefined;
  const fused = tf.customGrad((...args: unknown[]) => {
    const [input, g, b, save] = args as [TF.Tensor4D, TF.Tensor1D, TF.Tensor1D, (t: TF.Tensor[]) => void];
    const empty = tf.tensor1d([]);
    // y, the batch mean, the batch variance with Bessel's correction, and the kernel's saved mean and (biased) variance.
    const [y, batchMean, unbiased, savedMean, savedVariance] = k.backend.executeMultipleOutputs('FusedBatchNorm', attrs, [input, g, b, empty, empty], 5);
    stats = { mean: tf.keep(batchMean) as TF.Tensor1D, variance: tf.keep(savedVariance) as TF.Tensor1D };
    save([input, g, savedMean, savedVariance]);
    tf.dispose([empty, unbiased]);
    return {
      value: y,
      gradFunc: (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [dx, dScale, dOffset, ...rest] = k.backend.executeMultipleOutputs('FusedBatchNormGrad', attrs, [dy, ...saved], 5);
        tf.dispose(rest);
        return [dx, dScale, dOffset];
      },
    };
  });
  const y = fused(x, gamma, beta) as TF.Tensor4D;
  return { y, ...stats! };
}

/**
 * The same as one formula of tfjs ops, differentiated as one formula, and μ, σ² themselves
 * (for the moving statistics). They are computed inside the fused op, where tfjs records no gradient: the
 * formula for x already carries every path through them.
 */
function normalizeWithOps(x: TF.Tensor4D, gamma: TF.Tensor1D, beta: TF.Tensor1D, epsilon: number): { y: TF.Tensor4D; mean: TF.Tensor1D; variance: TF.Tensor1D } {
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
