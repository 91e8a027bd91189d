/**
 * PRECODE (Scheliga, Mäder, Seeland: "PRECODE - A Generic Model Extension to Prevent Deep Gradient
 * Leakage", WACV 2022): a variational bottleneck between the flattened features and the classifier.
 *
 *   [mu | s] = x·We + be           encoder to 2K numbers per example
 *   std      = softplus(s)
 *   z        = mu + std·eps        eps ~ N(0, I), in training; z = mu at inference
 *   out      = z·Wd + bd           decoder back to the input width F
 *   KL       = mean over the batch of  -1/2 · Σ_k (1 + 2·log std − mu² − std²)  / ln 2
 *
 * The forms follow the authors' VariationalBottleneck.py (dAI-SY-Group/PRECODE imports it as
 * src/VariationalBottleneck.py): std is softplus of the raw half with no offset, and the KL to N(0, I) is
 * in bits (divided by ln 2); the loss adds beta·KL with beta = 1e-3 by default. One deliberate difference:
 * their layer samples in eval mode too; here inference uses the mean, so predictions are deterministic.
 *
 * The noise is private to the training party: by default each layer seeds it from the operating system's
 * random source, never from the model seed (which the director knows and could replay). Tests and
 * reproducible runs can fix it with seedPrecodeNoise.
 */
import { randomInt } from 'node:crypto';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../tf.ts';
import { SeededRandom } from '../data/rng.ts';
import type { PrecodeConfig } from '../config/experiment.ts';
import type { LayersModel, ModelPlugins } from '../model-types.ts';

/** The layer's name in every model: its weights are `precode/encoder/kernel`, ... (see weight names below). */
export const PRECODE_LAYER_NAME = 'precode';
/** Weight names in the order the layer creates them, which is their order in model.trainableWeights. */
export const PRECODE_WEIGHT_NAMES = ['encoder/kernel', 'encoder/bias', 'decoder/kernel', 'decoder/bias'].map((n) => `${PRECODE_LAYER_NAME}/${n}`);

// ---------------------------------------------------------------------------------------------------
// The bottleneck as pure functions of tensors: the layer below and the leakage lab's functional model
// (ts/leakage/functional-model.ts) both use these, so the attacker differentiates the same arithmetic.
// ---------------------------------------------------------------------------------------------------

export interface CodeStats { mu: TF.Tensor2D; std: TF.Tensor2D }

/** Encoder: features [B, F] to the code's mean and standard deviation, each [B, K] (K = kernel columns / 2). */
export function encodeStats(x: TF.Tensor2D, kernel: TF.Tensor2D, bias: TF.Tensor1D): CodeStats {
  const k = kernel.shape[1] / 2;
  const stats = tf.add(tf.matMul(x, kernel), bias) as TF.Tensor2D;
  const mu = tf.slice(stats, [0, 0], [-1, k]) as TF.Tensor2D;
  const std = tf.softplus(tf.slice(stats, [0, k], [-1, k])) as TF.Tensor2D;
  return { mu, std };
}

/** Reparameterized sample mu + std·eps: differentiable in mu and std, eps held fixed. */
export function reparameterize({ mu, std }: CodeStats, eps: TF.Tensor2D): TF.Tensor2D {
  return tf.add(mu, tf.mul(std, eps)) as TF.Tensor2D;
}

export function decode(z: TF.Tensor2D, kernel: TF.Tensor2D, bias: TF.Tensor1D): TF.Tensor2D {
  return tf.add(tf.matMul(z, kernel), bias) as TF.Tensor2D;
}

/**
 * KL(N(mu, std²) ‖ N(0, I)) in bits, summed over the code and averaged over the batch, as PRECODE's loss().
 * No floor under log(std): softplus underflows to 0 only for raw values below about −87, where the loss
 * becomes infinite and trainLocal stops with "training diverged" rather than training on a clipped value.
 */
export function klDivergence({ mu, std }: CodeStats): TF.Scalar {
  const perDim = tf.sub(tf.sub(tf.add(1, tf.mul(2, tf.log(std))), tf.square(mu)), tf.square(std));
  return tf.div(tf.mul(-0.5, tf.mean(tf.sum(perDim, 1))), Math.LN2) as TF.Scalar;
}

// ---------------------------------------------------------------------------------------------------
// Noise
// ---------------------------------------------------------------------------------------------------

/**
 * The stream of eps draws one layer uses: a seeded generator that hands each training call a fresh seed
 * for tf.randomNormal. Two streams with the same seed give the same draws, call for call, which is how a
 * test (or a replica of the envoy) reproduces the noise a layer used.
 */
export class NoiseStream {
  private rng: SeededRandom;
  constructor(seed: number) {
    this.rng = new SeededRandom(seed);
  }

  next(shape: [number, number]): TF.Tensor2D {
    const callSeed = Math.floor(this.rng.next() * 2 ** 32);
    return tf.randomNormal(shape, 0, 1, 'float32', callSeed) as TF.Tensor2D;
  }
}

function privateSeed(): number {
  return randomInt(0, 2 ** 32);
}

// ---------------------------------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------------------------------

export interface PrecodeLayerArgs {
  /** K: dimensions of the code. */
  codeSize: number;
  /** Weight of the KL term in the training loss (read by precodeLossOf). */
  beta: number;
  /** Seeds the initial weights (derived from the model seed, so every party builds the same start). */
  seed: number;
  /** Seeds the sampling noise; omit for a private random seed. Not serialized. */
  noiseSeed?: number;
  name?: string;
}

type Kwargs = { [key: string]: unknown };

export class PrecodeBottleneck extends tf.layers.Layer {
  static className = 'PrecodeBottleneck';
  readonly codeSize: number;
  readonly beta: number;
  private readonly initSeed: number;
  private noise: NoiseStream;
  private weightsByRole: Record<'encKernel' | 'encBias' | 'decKernel' | 'decBias', TF.LayerVariable> | null = null;
  /** KL of the latest training-mode call, kept past the model's tidy for the loss closure (see call). */
  private lastKl: TF.Scalar | null = null;
  private klRead = true;

  constructor(args: PrecodeLayerArgs) {
    super({ name: args.name ?? PRECODE_LAYER_NAME });
    this.codeSize = args.codeSize;
    this.beta = args.beta;
    this.initSeed = args.seed;
    this.noise = new NoiseStream(args.noiseSeed ?? privateSeed());
  }

  /** Restart the sampling noise from a seed (reproducible training; tests). */
  seedNoise(seed: number): void {
    this.noise = new NoiseStream(seed);
  }

  override build(inputShape: TF.Shape | TF.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as TF.Shape;
    const width = shape[shape.length - 1];
    if (shape.length !== 2 || width == null) throw new Error(`PRECODE expects flat features [batch, F], got [${shape}]`);
    const k = this.codeSize;
    // Creation order is the weights' order in model.trainableWeights (PRECODE_WEIGHT_NAMES).
    this.weightsByRole = {
      encKernel: this.addWeight('encoder/kernel', [width, 2 * k], 'float32', tf.initializers.glorotUniform({ seed: this.initSeed })),
      encBias: this.addWeight('encoder/bias', [2 * k], 'float32', tf.initializers.zeros()),
      decKernel: this.addWeight('decoder/kernel', [k, width], 'float32', tf.initializers.glorotUniform({ seed: this.initSeed + 1 })),
      decBias: this.addWeight('decoder/bias', [width], 'float32', tf.initializers.zeros()),
    };
    this.built = true;
  }

  override computeOutputShape(inputShape: TF.Shape | TF.Shape[]): TF.Shape | TF.Shape[] {
    return inputShape;
  }

  /**
   * Samples in training (kwargs.training), the mean otherwise. A training call also computes the KL and
   * keeps it: the model's own call runs inside tf.tidy, which would otherwise dispose it before the loss
   * closure reads it. It stays on the gradient tape of the pass that made it, so beta·KL added inside
   * optimizer.minimize differentiates through the encoder. Only the latest one is kept: the next training
   * call (or dispose) frees it, so at most one scalar outlives its step.
   */
  override call(inputs: TF.Tensor | TF.Tensor[], kwargs: Kwargs): TF.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TF.Tensor2D;
    const w = this.weightsByRole!;
    const stats = encodeStats(x, w.encKernel.read() as TF.Tensor2D, w.encBias.read() as TF.Tensor1D);
    if (kwargs.training !== true) return decode(stats.mu, w.decKernel.read() as TF.Tensor2D, w.decBias.read() as TF.Tensor1D);
    const z = reparameterize(stats, this.noise.next([x.shape[0], this.codeSize]));
    this.replaceKl(tf.keep(klDivergence(stats)));
    return decode(z, w.decKernel.read() as TF.Tensor2D, w.decBias.read() as TF.Tensor1D);
  }

  /** The latest training call's KL (bits); each call's value can be read once, so a stale one never is. */
  takeKl(): TF.Scalar {
    if (!this.lastKl || this.klRead) {
      throw new Error('PRECODE: the KL term was read without a training-mode forward pass before it (call model.apply(x, { training: true }) first, in the same step)');
    }
    this.klRead = true;
    return this.lastKl;
  }

  private replaceKl(kl: TF.Scalar): void {
    this.lastKl?.dispose();
    this.lastKl = kl;
    this.klRead = false;
  }

  override dispose(): ReturnType<TF.layers.Layer['dispose']> {
    this.lastKl?.dispose();
    this.lastKl = null;
    return super.dispose();
  }

  override getConfig(): TF.serialization.ConfigDict {
    // noiseSeed is left out on purpose: a saved or shipped model config must not reveal the noise.
    return { ...super.getConfig(), codeSize: this.codeSize, beta: this.beta, seed: this.initSeed };
  }
}
tf.serialization.registerClass(PrecodeBottleneck);

// ---------------------------------------------------------------------------------------------------
// Wiring: the model factory and the training loop
// ---------------------------------------------------------------------------------------------------

/** The model factory's hook: one PRECODE layer before the classifier, initialized from the model seed. */
export function precodePlugin(config: PrecodeConfig): ModelPlugins {
  return { beforeClassifier: (seed) => [new PrecodeBottleneck({ codeSize: config.code_size, beta: config.beta, seed })] };
}

export function precodeLayerOf(model: LayersModel): PrecodeBottleneck | undefined {
  return model.layers.find((l): l is PrecodeBottleneck => l instanceof PrecodeBottleneck);
}

/**
 * The loss term trainLocal adds for a model with PRECODE: beta·KL of the model's latest training-mode pass, or undefined
 * for a model without PRECODE. Call it inside the minimize closure after model.apply(x, { training: true }).
 */
export function precodeLossOf(model: LayersModel): (() => TF.Scalar) | undefined {
  const layer = precodeLayerOf(model);
  if (!layer) return undefined;
  return () => tf.mul(layer.takeKl(), layer.beta) as TF.Scalar;
}

/** Fix the model's PRECODE noise (no-op without PRECODE): the same seed gives the same draws. */
export function seedPrecodeNoise(model: LayersModel, seed: number): void {
  precodeLayerOf(model)?.seedNoise(seed);
}
