/**
 * DP-SGD (Abadi et al. 2016) for a tfjs LayersModel, one optimizer step at a time, as Opacus does it:
 *
 *   g̃ = ( Σ_i clip_C(∇ℓ_i) + N(0, σ²C² I) ) / B,    clip_C(g) = g · min(1, C / (‖g‖₂ + 1e-6))
 *
 * with ‖g‖₂ the norm of example i's gradient over all trainable weights together (flat clipping), then
 * g̃ handed to any tfjs optimizer (SGD, momentum, Adam: post-processing of g̃ costs no privacy).
 *
 * Decisions, each needed for the privacy analysis (rdp-accountant.ts) to hold:
 *
 *  - BatchNorm runs in inference mode (moving statistics, frozen). In training mode it would normalise
 *    with statistics of the whole batch, so one example's gradient would depend on the others and the
 *    clipping would no longer bound one example's influence; and tfjs would update the moving mean and
 *    variance from the private batch, weights that are sent to the director without any noise. (Opacus
 *    refuses BatchNorm for the same reasons.) Per-example training mode (a batch of one) would avoid the
 *    mixing but still leak through the moving statistics, and would train a different function (per-image
 *    normalisation) from the one evaluated. Inference mode makes BN a fixed affine map per channel whose
 *    scale and shift still train; the moving statistics stay whatever the global model carries.
 *  - Batches: the envoy shuffles and cuts fixed-size batches (each example once per epoch), while the
 *    accountant assumes Poisson sampling with rate q = batch_size / n. That is the usual approximation
 *    (Abadi et al., Opacus without its Poisson sampler, TF Privacy); the reported ε is for Poisson sampling.
 *  - The sum is divided by the expected batch size (batch_size), not the actual one, as Opacus does: under
 *    Poisson sampling the actual size depends on the data, and dividing by it would need accounting; with
 *    a fixed denominator a short last batch just takes a smaller step.
 *  - Noise comes from a NoiseSource. GaussianNoise below draws it from an AES-256-CTR keystream: with a
 *    secret random key (the default) nobody can predict or subtract it; with a numeric seed it is
 *    reproducible, for tests only: whoever knows the seed (e.g. from the experiment config, which the
 *    director has) can remove the noise and the guarantee is gone.
 *
 * Per-example gradients: tfjs has no vmap. For a Sequential model built from layers with a known
 * per-example gradient rule (Conv2D, Dense, BatchNormalization, GroupNormalization, and layers without trainable weights: the
 * ConvNetBN of model.ts), one batched forward/backward pass gives every layer's input and the gradient at
 * its output, and the per-example weight gradients follow from those (the approach of Opacus's grad
 * samplers; Goodfellow 2015, Rochette et al. 2019). Any other model (custom layers such as PRECODE's) takes
 * one forward/backward pass per example. Both give the same gradients (test/privacy-dp-sgd.test.ts);
 * bench/privacy.bench.ts measures their cost against a plain batched step.
 */
import { createCipheriv, createHash, randomBytes, type Cipher } from 'node:crypto';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../tf.ts';
import { groupNormalized, type GroupNormalization } from '../group-norm.ts';
import type { LayersModel } from '../model.ts';

/**
 * One loss per example: logits [B, k] and labels [B] to losses [B], e.g.
 * `tf.losses.softmaxCrossEntropy(tf.oneHot(y, k), logits, classWeights, 0, tf.Reduction.NONE)`.
 * Anything in it that depends on the data is clipped with the example it belongs to.
 */
export type PerExampleLoss = (logits: TF.Tensor2D, y: TF.Tensor1D) => TF.Tensor1D;

/** Standard normal draws. */
export interface NoiseSource {
  normal(): number;
}

export interface DpSgdOptions {
  /** C: each example's gradient is scaled down to at most this L2 norm. */
  clipNorm: number;
  /** σ: the noise added to the sum of clipped gradients has standard deviation σ·C per coordinate. */
  noiseMultiplier: number;
  /** Denominator of the averaged gradient; the configured batch size (default: this batch's size). */
  expectedBatchSize?: number;
  /**
   * A loss term that does not depend on the training data (FedProx's proximal term to the global model):
   * its gradient is added to the privatised gradient unclipped and without noise, which costs no privacy.
   */
  dataIndependentLoss?: () => TF.Scalar;
  /** Examples whose per-example gradients are held in memory at once (default 32). */
  microbatchSize?: number;
  /** Force the per-example gradient method (default: gradientMethodFor(model)); for benchmarks. */
  gradientMethod?: GradientMethod;
}

export interface DpSgdStepResult {
  /** Mean of the examples' (unclipped) losses, before the step. */
  loss: number;
  /** Share of the batch whose gradient norm exceeded C (a guide for choosing C). */
  clippedFraction: number;
  /** How the per-example gradients were computed (see gradientMethodFor). */
  method: GradientMethod;
}

/**
 * One DP-SGD step on the batch (x, y): per-example gradients, clipped to C, summed, noised with
 * N(0, σ²C²), divided by the expected batch size, applied with `optimizer`.
 */
export function dpSgdStep(
  model: LayersModel, optimizer: TF.Optimizer, x: TF.Tensor, y: TF.Tensor1D, loss: PerExampleLoss,
  options: DpSgdOptions, noise: NoiseSource,
): DpSgdStepResult {
  checkOptions(options);
  const batch = x.shape[0];
  if (batch === 0 || y.shape[0] !== batch) throw new Error(`DP-SGD batch of ${batch} images with ${y.shape[0]} labels`);
  const method = options.gradientMethod ?? gradientMethodFor(model);
  const { sums, lossSum, clippedCount } = clippedGradientSum(model, x, y, loss, options, method);
  const stats = { loss: lossSum.dataSync()[0] / batch, clippedFraction: clippedCount.dataSync()[0] / batch, method };
  const variables = trainableVariables(model);
  const gradients = tf.tidy(() => {
    const regularizer = options.dataIndependentLoss ? tf.variableGrads(options.dataIndependentLoss, variables).grads : {};
    const named: TF.NamedTensorMap = {};
    variables.forEach((v, k) => {
      const std = options.noiseMultiplier * options.clipNorm;
      const noisy = sums[k].add(gaussianTensor(noise, v.shape, std)).div(options.expectedBatchSize ?? batch);
      named[v.name] = regularizer[v.name] ? noisy.add(regularizer[v.name]) : noisy;
    });
    return named;
  });
  optimizer.applyGradients(gradients);
  tf.dispose([...sums, lossSum, clippedCount, ...Object.values(gradients)]);
  return stats;
}

function checkOptions({ clipNorm, noiseMultiplier, expectedBatchSize, microbatchSize }: DpSgdOptions): void {
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) throw new Error(`DP-SGD clip norm must be a positive number, got ${clipNorm}`);
  if (!(noiseMultiplier >= 0 && Number.isFinite(noiseMultiplier))) {
    throw new Error(`DP-SGD noise multiplier must be ≥ 0, got ${noiseMultiplier}`);
  }
  if (expectedBatchSize !== undefined && !(expectedBatchSize > 0)) {
    throw new Error(`expected batch size must be > 0, got ${expectedBatchSize}`);
  }
  if (microbatchSize !== undefined && !(Number.isInteger(microbatchSize) && microbatchSize > 0)) {
    throw new Error(`microbatch size must be a positive integer, got ${microbatchSize}`);
  }
}

function trainableVariables(model: LayersModel): TF.Variable[] {
  return model.trainableWeights.map((w) => w.read() as TF.Variable);
}

interface ClippedSum {
  /** Σ_i clip_C(∇ℓ_i), one tensor per trainable variable. */
  sums: TF.Tensor[];
  lossSum: TF.Scalar;
  clippedCount: TF.Scalar;
}

/** Per-example gradients a microbatch at a time, each clipped to C, summed over the batch. */
function clippedGradientSum(
  model: LayersModel, x: TF.Tensor, y: TF.Tensor1D, loss: PerExampleLoss, options: DpSgdOptions, method: GradientMethod,
): ClippedSum {
  const variables = trainableVariables(model);
  const chunk = options.microbatchSize ?? 32;
  let acc: ClippedSum = { sums: variables.map((v) => tf.zerosLike(v)), lossSum: tf.scalar(0), clippedCount: tf.scalar(0) };
  for (let start = 0; start < x.shape[0]; start += chunk) {
    const next = tf.tidy(() => {
      const size = Math.min(chunk, x.shape[0] - start);
      const part = perExampleGradients(model, x.slice(start, size), y.slice(start, size), loss, method);
      const { clipped, clippedCount } = clipAndSum(part.grads, options.clipNorm);
      return {
        sums: acc.sums.map((s, k) => s.add(clipped[k])),
        lossSum: acc.lossSum.add(part.lossSum) as TF.Scalar,
        clippedCount: acc.clippedCount.add(clippedCount) as TF.Scalar,
      };
    });
    tf.dispose([...acc.sums, acc.lossSum, acc.clippedCount]);
    acc = next;
  }
  return acc;
}

/**
 * Σ_i g_i · min(1, C / (‖g_i‖ + 1e-6)) (Opacus's factor), the norm taken over all of example i's
 * gradients together. `grads[k]` holds variable k's per-example gradients, [B, ...shape].
 */
function clipAndSum(grads: TF.Tensor[], clipNorm: number): { clipped: TF.Tensor[]; clippedCount: TF.Scalar } {
  const b = grads[0].shape[0];
  const flat = grads.map((g) => g.reshape([b, -1]));
  const norms = tf.sqrt(tf.addN(flat.map((g) => g.square().sum(1))));
  const factors = tf.minimum(1, tf.div(clipNorm, norms.add(1e-6))).reshape([1, b]);
  return {
    clipped: flat.map((g, k) => tf.matMul(factors, g).reshape(grads[k].shape.slice(1))),
    clippedCount: norms.greater(clipNorm).sum() as TF.Scalar,
  };
}

// ---- Per-example gradients ----

export type GradientMethod = 'vectorized' | 'loop';

export interface PerExampleGradients {
  /** Per trainable variable (model.trainableWeights order): the examples' gradients, [B, ...shape]. */
  grads: TF.Tensor[];
  /** Σ_i ℓ_i. */
  lossSum: TF.Scalar;
}

/**
 * 'vectorized' when every layer of a Sequential model with trainable weights has a per-example rule below,
 * else 'loop'. Layers without trainable weights are taken not to mix examples, true of tfjs's own layers in
 * inference mode (activations, pooling, reshaping, dropout, frozen BatchNorm).
 */
export function gradientMethodFor(model: LayersModel): GradientMethod {
  return sequentialSteps(model)?.every((s) => s.layer.trainableWeights.length === 0 || s.rule) ? 'vectorized' : 'loop';
}

interface Step { layer: TF.layers.Layer; rule: PerExampleRule | null }

/** A Sequential model's layers, each with its per-example rule if it has trainable weights and one. */
function sequentialSteps(model: LayersModel): Step[] | null {
  if (model.getClassName() !== 'Sequential' || model.inputs.length !== 1) return null;
  let inputRank = model.inputs[0].rank;
  return model.layers.map((layer) => {
    const rule = layer.trainableWeights.length ? ruleFor(layer, inputRank) : null;
    inputRank = Array.isArray(layer.outputShape[0]) ? 0 : layer.outputShape.length;
    return { layer, rule };
  });
}

/** Each example's gradient of its own loss, BatchNorm in inference mode. */
export function perExampleGradients(
  model: LayersModel, x: TF.Tensor, y: TF.Tensor1D, loss: PerExampleLoss, method: GradientMethod = gradientMethodFor(model),
): PerExampleGradients {
  if (method === 'vectorized' && gradientMethodFor(model) !== 'vectorized') {
    throw new Error(`model '${model.name}' has layers without a per-example gradient rule`);
  }
  return method === 'vectorized' ? vectorizedGradients(model, x, y, loss) : loopGradients(model, x, y, loss);
}

/** One forward/backward pass per example: works for any model whose examples do not interact. */
function loopGradients(model: LayersModel, x: TF.Tensor, y: TF.Tensor1D, loss: PerExampleLoss): PerExampleGradients {
  const variables = trainableVariables(model);
  const perExample: TF.Tensor[][] = variables.map(() => []);
  const values: TF.Scalar[] = [];
  for (let i = 0; i < x.shape[0]; i++) {
    const lossOfOne = () => summedLoss(loss, model.apply(x.slice(i, 1), { training: false }) as TF.Tensor2D, y.slice(i, 1));
    const { value, grads } = tf.variableGrads(lossOfOne, variables);
    variables.forEach((v, k) => perExample[k].push(grads[v.name]));
    values.push(value);
  }
  const grads = perExample.map((list) => tf.stack(list));
  const lossSum = tf.addN(values) as TF.Scalar;
  tf.dispose([...perExample.flat(), ...values]);
  return { grads, lossSum };
}

function summedLoss(loss: PerExampleLoss, logits: TF.Tensor2D, y: TF.Tensor1D): TF.Scalar {
  const losses = loss(logits, y);
  if (losses.rank !== 1 || losses.shape[0] !== y.shape[0]) {
    throw new Error(`the DP-SGD loss must return one loss per example ([${y.shape[0]}]), got shape [${losses.shape}] (use Reduction.NONE)`);
  }
  return losses.sum();
}

/**
 * One batched pass. A zero "probe" added to the output z of each layer with weights makes the gradient
 * of Σ_i ℓ_i with respect to the probe equal ∂Σℓ/∂z, whose row i is ∂ℓ_i/∂z_i because examples do not
 * interact (BatchNorm in inference mode). Each layer's rule turns (its input, that gradient) into its
 * weights' per-example gradients.
 */
function vectorizedGradients(model: LayersModel, x: TF.Tensor, y: TF.Tensor1D, loss: PerExampleLoss): PerExampleGradients {
  const b = x.shape[0];
  const steps = sequentialSteps(model)!;
  const probes = steps.filter((s) => s.rule).map((s) => tf.zeros(batchShape(s.layer.outputShape, b)));
  const inputs: TF.Tensor[] = [];
  const forward = (...probe: TF.Tensor[]): TF.Scalar => {
    let a = x;
    let k = 0;
    for (const { layer, rule } of steps) {
      if (rule) inputs.push(a === x ? x : tf.keep(a)); // kept past the gradient's tidy for the rules below
      a = layer.apply(a, { training: false }) as TF.Tensor;
      if (rule) a = a.add(probe[k++]);
    }
    return summedLoss(loss, a as TF.Tensor2D, y);
  };
  const { value, grads: outputGrads } = tf.valueAndGrads(forward)(probes);
  const byName = new Map<string, TF.Tensor>();
  steps.filter((s) => s.rule).forEach(({ layer, rule }, k) => {
    for (const [name, g] of rule!(layer, inputs[k], outputGrads[k])) byName.set(name, g);
  });
  tf.dispose([...probes, ...inputs.filter((t) => t !== x)]);
  return { grads: model.trainableWeights.map((w) => byName.get(w.name)!), lossSum: value };
}

function batchShape(shape: TF.Shape | TF.Shape[], b: number): number[] {
  if (Array.isArray(shape[0])) throw new Error('layers with several outputs have no per-example rule');
  return (shape as TF.Shape).map((d) => (d === null ? b : d));
}

/** (layer, its input [B, ...], ∂Σℓ/∂output [B, ...]) → per-example gradient of each trainable weight, by name. */
type PerExampleRule = (layer: TF.layers.Layer, input: TF.Tensor, outputGrad: TF.Tensor) => [string, TF.Tensor][];

/** The rule for a layer whose input has rank `inputRank` (batch included), or null. */
function ruleFor(layer: TF.layers.Layer, inputRank: number): PerExampleRule | null {
  const config = layer.getConfig();
  const linear = config.activation === undefined || config.activation === 'linear';
  const ones = (v: unknown) => [v].flat().every((n) => n === 1);
  switch (layer.getClassName()) {
    case 'Conv2D':
      return linear && ones(config.strides) && ones(config.dilationRate) && config.dataFormat === 'channelsLast' ? conv2dRule : null;
    case 'Dense':
      return linear && inputRank === 2 ? denseRule : null;
    case 'BatchNormalization':
      return config.axis === -1 || config.axis === inputRank - 1 ? batchNormRule : null;
    case 'GroupNormalization':
      return inputRank === 4 ? groupNormRule : null;
    default:
      return null;
  }
}

/** The layer's trainable weight whose name ends in `/suffix`. */
function weightOf(layer: TF.layers.Layer, suffix: string): TF.LayerVariable | undefined {
  return layer.trainableWeights.find((w) => w.originalName.endsWith(`/${suffix}`));
}

/**
 * Conv2D, stride 1: example b's kernel gradient is Σ_{h,w} patch_b(h, w) ⊗ δ_b(h, w), one batched matMul of
 * the input's kh·kw shifted copies (im2col by slicing, as tfjs has no extractImagePatches) with δ.
 */
const conv2dRule: PerExampleRule = (layer, input, delta) => {
  const out: [string, TF.Tensor][] = [];
  const kernel = weightOf(layer, 'kernel');
  const [b, ho, wo, cout] = delta.shape;
  if (kernel) {
    const [kh, kw, cin] = kernel.shape as number[];
    // TensorFlow's 'same' padding at stride 1: (k − 1) split with the odd one at the end.
    const same = layer.getConfig().padding === 'same';
    const pad = (k: number): [number, number] => (same ? [Math.floor((k - 1) / 2), Math.ceil((k - 1) / 2)] : [0, 0]);
    const padded = tf.pad(input, [[0, 0], pad(kh), pad(kw), [0, 0]]);
    const shifted: TF.Tensor[] = [];
    for (let p = 0; p < kh; p++) for (let q = 0; q < kw; q++) shifted.push(padded.slice([0, p, q, 0], [b, ho, wo, cin]));
    const patches = tf.stack(shifted, 3).reshape([b, ho * wo, kh * kw * cin]);
    out.push([kernel.name, tf.matMul(patches, delta.reshape([b, ho * wo, cout]), true, false).reshape([b, kh, kw, cin, cout])]);
  }
  const bias = weightOf(layer, 'bias');
  if (bias) out.push([bias.name, delta.sum([1, 2])]);
  return out;
};

/** Dense on [B, n]: example b's kernel gradient is the outer product input_b ⊗ δ_b; the bias's is δ_b. */
const denseRule: PerExampleRule = (layer, input, delta) => {
  const out: [string, TF.Tensor][] = [];
  const kernel = weightOf(layer, 'kernel');
  if (kernel) out.push([kernel.name, tf.matMul(input.expandDims(2), delta.expandDims(1))]);
  const bias = weightOf(layer, 'bias');
  if (bias) out.push([bias.name, delta]);
  return out;
};

/**
 * BatchNorm in inference mode, y = γ·x̂ + β with x̂ from the moving statistics: ∂γ = Σ δ·x̂ and ∂β = Σ δ over
 * the axes other than batch and channel.
 */
const batchNormRule: PerExampleRule = (layer, input, delta) => {
  const stat = (suffix: string) => layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`))!.read();
  const epsilon = layer.getConfig().epsilon as number;
  const axes = Array.from({ length: input.rank - 2 }, (_, i) => i + 1); // all but batch and channel
  const sumOver = (t: TF.Tensor) => (axes.length ? t.sum(axes) : t);
  const out: [string, TF.Tensor][] = [];
  const gamma = weightOf(layer, 'gamma');
  if (gamma) {
    const normalized = input.sub(stat('moving_mean')).div(stat('moving_variance').add(epsilon).sqrt());
    out.push([gamma.name, sumOver(delta.mul(normalized))]);
  }
  const beta = weightOf(layer, 'beta');
  if (beta) out.push([beta.name, sumOver(delta)]);
  return out;
};

/** Group norm normalizes each image on its own, so its gamma/beta gradients are per-example sums as for batch norm. */
const groupNormRule: PerExampleRule = (layer, input, delta) => {
  const normalized = groupNormalized(input as TF.Tensor4D, (layer as GroupNormalization).groups);
  return [[weightOf(layer, 'gamma')!.name, delta.mul(normalized).sum([1, 2])], [weightOf(layer, 'beta')!.name, delta.sum([1, 2])]];
};

function gaussianTensor(noise: NoiseSource, shape: number[], std: number): TF.Tensor {
  if (std === 0) return tf.zeros(shape);
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i++) values[i] = std * noise.normal();
  return tf.tensor(values, shape);
}

/**
 * Standard normal draws by Box–Muller on 53-bit uniforms from an AES-256-CTR keystream (node:crypto, i.e.
 * OpenSSL). The keystream makes the noise unpredictable to anyone without the key and has no short period
 * (a 32-bit generator such as SeededRandom would repeat its noise after 2³² draws, a few hundred rounds of
 * a 60k-weight model). 53-bit uniforms put the largest draw at 8.6σ rather than 6.7σ for 32-bit ones.
 */
export class GaussianNoise implements NoiseSource {
  private readonly cipher: Cipher;
  private words = new Uint32Array(0);
  private next = 0;
  private spare: number | null = null;

  /**
   * With no seed, a fresh random key: what training must use. A number or a 32-byte key makes the stream
   * reproducible, which is for tests and debugging only (anyone holding the seed can remove the noise).
   */
  constructor(seed?: number | Uint8Array) {
    this.cipher = createCipheriv('aes-256-ctr', keyOf(seed), Buffer.alloc(16));
  }

  normal(): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return z;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform())); // 1 − u ∈ (0, 1]: no log(0)
    const angle = 2 * Math.PI * this.uniform();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** Uniform in [0, 1) with 53 random bits. */
  private uniform(): number {
    const high = this.word() >>> 5; // 27 bits
    const low = this.word() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  private word(): number {
    if (this.next === this.words.length) {
      // Encrypting zeros yields the raw keystream; copied so the view is 4-byte aligned.
      this.words = new Uint32Array(new Uint8Array(this.cipher.update(Buffer.alloc(1 << 16))).buffer);
      this.next = 0;
    }
    return this.words[this.next++];
  }
}

function keyOf(seed: number | Uint8Array | undefined): Buffer {
  if (seed === undefined) return randomBytes(32);
  if (typeof seed === 'number') return createHash('sha256').update(`fl-secflow dp-sgd noise ${seed}`).digest();
  if (seed.length !== 32) throw new Error(`a noise key must be 32 bytes, got ${seed.length}`);
  return Buffer.from(seed);
}
