/**
 * Local training and evaluation with a hand-written loop (not model.fit) so the loss can carry extra
 * terms: FedProx's proximal term now, and the defenses' terms (PRECODE's KL, DP-SGD's clipping) later.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from './tf.ts';
import type { TrainingConfig } from './config/experiment.ts';
import type { LayersModel } from './model.ts';
import { classCounts, size, subset, type ImageDataset } from './data/dataset.ts';
import { SeededRandom } from './data/rng.ts';
import { batchOf, consecutiveBatches, type PixelTransform } from './data/batches.ts';
import { augmentImages } from './data/augment.ts';
import { precodeLossOf } from './defenses/precode.ts';
import { setShardStatistics } from './defenses/shard-statistics.ts';
import { dpSgdStep, GaussianNoise, type PerExampleLoss } from './privacy/dp-sgd.ts';
import { metricsOfScores, type ClassificationMetrics } from './metrics.ts';

export interface TrainProgress { step: number; steps: number; loss: number }
export interface TrainResult {
  examples: number;
  steps: number;
  meanLoss: number;
  seconds: number;
  /** Indices into the dataset of the examples trained on (all of them unless `examples_per_round` is set). */
  trainedIndices: number[];
  /** Under DP-SGD: what the privacy accountant needs. */
  dp?: DpSteps;
}

/** DP-SGD steps taken, for the accountant (q = batch / examples, as for Poisson sampling). */
export interface DpSteps { steps: number; sampleRate: number; noiseMultiplier: number }

/** How many optimizer steps local training takes on `examples` examples (at least one). */
export function localStepCount(examples: number, config: Pick<TrainingConfig, 'local_epochs' | 'batch_size'>): number {
  return Math.max(1, Math.round(config.local_epochs * Math.ceil(examples / config.batch_size)));
}

/**
 * What local training on a shard of `shardSize` images will do under `config`, known before it starts: the
 * envoy's privacy policy and ledger judge a task by it (the same rules trainLocal follows).
 */
export function plannedTraining(shardSize: number, config: TrainingConfig): { examples: number; batch: number; steps: number; dp?: DpSteps } {
  const examples = Math.min(shardSize, config.examples_per_round ?? shardSize);
  const steps = localStepCount(examples, config);
  return {
    examples, steps, batch: Math.min(config.batch_size, examples),
    ...(config.dp.enabled ? { dp: { steps, sampleRate: Math.min(1, config.batch_size / examples), noiseMultiplier: config.dp.noise_multiplier } } : {}),
  };
}

export interface TrainOptions {
  config: TrainingConfig;
  /** Mixed into the shuffling seed so rounds and envoys draw different batch orders. */
  seedSalt?: number;
  onProgress?: (p: TrainProgress) => void;
  /** Extra loss terms added to the data loss (the model's own, e.g. PRECODE's KL, are added anyway). */
  extraLoss?: () => TF.Scalar;
}

export function makeOptimizer(config: TrainingConfig): TF.Optimizer {
  switch (config.optimizer) {
    case 'adam': return tf.train.adam(config.learning_rate);
    case 'sgd': return tf.train.momentum(config.learning_rate, config.momentum);
    case 'adadelta': return tf.train.adadelta(config.learning_rate);
  }
}

export async function trainLocal(model: LayersModel, full: ImageDataset, options: TrainOptions): Promise<TrainResult> {
  const { config } = options;
  const started = performance.now();
  const optimizer = makeOptimizer(config);
  const numClasses = full.classNames.length;
  // FedProx anchors local weights to the global model received at the start of the round.
  const anchor = config.fedprox_mu > 0 ? model.trainableWeights.map((w) => w.read().clone()) : [];
  const rng = new SeededRandom(config.seed * 7919 + (options.seedSalt ?? 0));
  const trainedIndices = roundSubset(size(full), config.examples_per_round, rng);
  const ds = trainedIndices.length === size(full) ? full : subset(full, trainedIndices);
  const classWeights = config.class_weighting ? inverseFrequencyWeights(ds) : null;
  // The model's own loss terms (PRECODE's beta * KL) come with it, whoever trains it.
  const modelLoss = precodeLossOf(model);
  const n = size(ds);
  // Per-example cross-entropy (class-weighted if asked); the plain step takes its mean, DP-SGD clips each.
  const exampleLosses = (logits: TF.Tensor2D, y: TF.Tensor1D) => tf.losses.softmaxCrossEntropy(
    tf.oneHot(y, numClasses), logits, classWeights ? tf.gather(classWeights, y) : undefined, 0, tf.Reduction.NONE) as TF.Tensor1D;
  const dp = config.dp.enabled ? privateStepper(model, optimizer, config, exampleLosses, anchor) : undefined;
  if (dp && (modelLoss || options.extraLoss)) throw new Error('DP-SGD cannot train a model with extra loss terms (PRECODE): they are not clipped per example');
  const stepsPerEpoch = Math.ceil(n / config.batch_size);
  const steps = localStepCount(n, config);
  const augment = augmentationOf(config, ds, config.seed * 104729 + (options.seedSalt ?? 0));
  let order: number[] = [];
  let lossSum = 0;
  for (let step = 0; step < steps; step++) {
    if (step % stepsPerEpoch === 0) order = rng.shuffle([...Array(n).keys()]);
    const start = (step % stepsPerEpoch) * config.batch_size;
    const { x, y } = batchOf(ds, order.slice(start, start + config.batch_size), augment);
    let value: number;
    if (dp) {
      value = dp.step(x, y);
    } else {
      const loss = optimizer.minimize(() => tf.tidy(() => {
        const logits = model.apply(x, { training: true }) as TF.Tensor2D;
        let total = exampleLosses(logits, y).mean() as TF.Scalar;
        if (anchor.length) total = total.add(proximalTerm(model, anchor, config.fedprox_mu));
        if (modelLoss) total = total.add(modelLoss());
        if (options.extraLoss) total = total.add(options.extraLoss());
        return total as TF.Scalar;
      }), true)!;
      value = (await loss.data())[0];
      loss.dispose();
    }
    tf.dispose([x, y]);
    if (!Number.isFinite(value)) throw new Error(`training diverged at step ${step + 1}: loss is ${value}`);
    lossSum += value;
    options.onProgress?.({ step: step + 1, steps, loss: value });
    // Let timers and sockets run between steps (heartbeats, NATS pings): tensor reads resolve as
    // microtasks, which alone would starve the event loop for the whole of local training.
    await yieldToEventLoop();
  }
  optimizer.dispose();
  tf.dispose(anchor);
  classWeights?.dispose();
  // The whole shard, not this round's subset: the statistics must not single out the images trained on.
  if (config.batch_norm_statistics === 'shard') setShardStatistics(model, full);
  return {
    examples: n, steps, meanLoss: lossSum / steps, seconds: (performance.now() - started) / 1000, trainedIndices,
    ...(dp ? { dp: { steps, sampleRate: Math.min(1, config.batch_size / n), noiseMultiplier: config.dp.noise_multiplier } } : {}),
  };
}

/**
 * DP-SGD steps (privacy/dp-sgd.ts): per-example clipping and Gaussian noise from a secret key, so nobody
 * who knows the experiment's seeds can subtract it. FedProx's term depends on no example: it is added
 * after the noise, which costs no privacy.
 */
function privateStepper(model: LayersModel, optimizer: TF.Optimizer, config: TrainingConfig, loss: PerExampleLoss, anchor: TF.Tensor[]) {
  const noise = new GaussianNoise();
  const options = {
    clipNorm: config.dp.clip_norm, noiseMultiplier: config.dp.noise_multiplier, expectedBatchSize: config.batch_size,
    dataIndependentLoss: anchor.length ? () => proximalTerm(model, anchor, config.fedprox_mu) : undefined,
  };
  return { step: (x: TF.Tensor4D, y: TF.Tensor1D) => dpSgdStep(model, optimizer, x, y, loss, options, noise).loss };
}

/** The batch transform that augments, with its own seeded stream (so turning it on leaves batch order alone). */
function augmentationOf(config: TrainingConfig, ds: ImageDataset, seed: number): PixelTransform | undefined {
  if (!config.augmentation.enabled) return undefined;
  const rng = new SeededRandom(seed);
  return (pixels, count) => augmentImages(pixels, count, ds.sampleShape, config.augmentation, rng);
}

/** All indices, or a seeded random subset of `count` of them (sorted) when a round trains on fewer. */
function roundSubset(n: number, count: number | undefined, rng: SeededRandom): number[] {
  const all = [...Array(n).keys()];
  if (count === undefined || count >= n) return all;
  return rng.shuffle(all).slice(0, count).sort((a, b) => a - b);
}

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function proximalTerm(model: LayersModel, anchor: TF.Tensor[], mu: number): TF.Scalar {
  const squared = model.trainableWeights.map((w, i) => w.read().sub(anchor[i]).square().sum());
  return tf.addN(squared).mul(mu / 2) as TF.Scalar;
}

function inverseFrequencyWeights(ds: ImageDataset): TF.Tensor1D {
  const counts = classCounts(ds);
  const n = size(ds);
  return tf.tensor1d(counts.map((c) => (c === 0 ? 0 : n / (counts.length * c))));
}

/** P(class 1) for every example, in batches, with the model in inference mode. */
export function predictPositive(model: LayersModel, ds: ImageDataset, batchSize = 256): Float32Array {
  const out = new Float32Array(size(ds));
  for (const indices of consecutiveBatches(ds, batchSize)) {
    const probs = tf.tidy(() => {
      const { x } = batchOf(ds, indices);
      return tf.softmax(model.apply(x, { training: false }) as TF.Tensor2D).slice([0, 1], [-1, 1]).dataSync();
    });
    out.set(probs, indices[0]);
  }
  return out;
}

export function evaluate(model: LayersModel, ds: ImageDataset, threshold = 0.5): ClassificationMetrics {
  const p = predictPositive(model, ds);
  return metricsOfScores(p, ds.labels, threshold);
}
