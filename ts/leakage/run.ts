/**
 * One leakage run: build the attacker's view (weights it sent + what it observed), run an attack per
 * batch of victim images, score against the true images and the mean-image floor, write a PNG grid and a
 * JSON summary. Used by `secflow leakage attack` and bench/leakage.bench.ts.
 *
 * Two sources of the observation:
 *  - simulated: the victim's gradient (or K-step update) is computed here from the true images — the
 *    reference setting of the papers and the strength targets;
 *  - saved: the weights the director sent and the update it received (an audit record, or a pair of
 *    weights files); the multi-step attack runs on the update, gradient attacks on -update / (η K).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';
import { buildModel } from '../core/model.ts';
import type { ModelSpec } from '../core/config/experiment.ts';
import { sizeOf, toTensors, type FlatWeights } from '../core/weights.ts';
import { type BatchMoments, type BnMode, type ConvNetParams, disposeParams, paramsFromNamed, paramsOfModel, trainableNamesOf } from './functional-model.ts';
import { type AttackSetting, observeGradients } from './attacks/common.ts';
import { biasGradient, labelCandidates, meanPrediction, recoverLabels } from './attacks/idlg.ts';
import { dlg } from './attacks/dlg.ts';
import { invertingGradients } from './attacks/inverting-gradients.ts';
import { multiStepAttack, observeUpdate } from './attacks/multi-step.ts';
import { observedMoments } from './attacks/bn-statistics.ts';
import { analyticAttack } from './attacks/analytic.ts';
import { FEATURE_INVERSION_DEFAULTS } from './attacks/feature-inversion.ts';
import { precodeIgnoreAttack } from './attacks/precode-ignore.ts';
import { applyIntensityPrior, intensityPrior } from './attacks/intensity-prior.ts';
import { meanImage } from './metrics.ts';
import { chanceGap, type ImageScore, scoreBatch, split, summarize, type ScoreSummary } from './score.ts';
import { writeGrid } from './grid.ts';
import type { AttackName } from './config.ts';

export type { AttackName };

/**
 * 'analytic': linear-layer leakage + feature inversion (attacks/analytic.ts), on any ConvNetBN, PRECODE or not;
 * 'precode-adaptive' is its earlier name on PRECODE models. 'precode-ignore': matching the conv blocks' gradients
 * under the upstream gradient PRECODE's encoder reveals (attacks/precode-ignore.ts).
 */

/** Attacks that read the scale off batch norm's epsilon themselves (the prior only for images they did not match exactly) and need no labels. */
const ANALYTIC: AttackName[] = ['analytic', 'precode-adaptive'];

export interface LeakageRunConfig {
  attack: AttackName;
  model: ModelSpec;
  bnMode: BnMode;
  /** Victim images (N * H * W * C in [0, 1]) and their labels; attacked in consecutive batches. */
  images: Float32Array;
  labels: Int32Array;
  batch: number;
  /** Training-set images for the no-information floor's mean image. */
  floorImages: Float32Array;
  /**
   * The observation is a secure aggregate: envoy e trained on `batch / weights.length` of the images, in order,
   * and FedAvg weighed its update by weights[e] (AttackSetting.aggregate).
   */
  aggregateWeights?: number[];
  /** Feature inversion's L-BFGS iterations after its Adam phase (analytic attack). */
  polishIterations?: number;
  iterations: number;
  restarts: number;
  learningRate: number;
  tvWeight: number;
  seed: number;
  localSteps: number;
  localLearningRate: number;
  /** The envoy's optimizer, simulated by the multi-step attack (default plain SGD). */
  localOptimizer?: 'sgd' | 'adam';
  localMomentum?: number;
  /** The model under attack when it is not an untrained one (e.g. a checkpoint after one federated round). */
  weights?: FlatWeights;
  /**
   * A real observation instead of a simulated one: the weights the director sent and the update it received
   * (an audit record, or saved files). Every batch of victim images is then scored against this one update.
   */
  saved?: { sent: FlatWeights; delta: FlatWeights };
  /**
   * Weight of matching the batch-norm statistics a one-step update in training mode reveals
   * (attacks/bn-statistics.ts; IG only). 0 ignores them. Default 10 (measured on a one-image SGD step, width 16:
   * 42.9 dB with it, 14.7 dB without, floor 20.4 dB; without it SSIM was already 0.92: right shapes, wrong brightness).
   */
  bnStatisticsWeight?: number;
  /**
   * Give reconstructions the training set's average brightness and contrast when nothing in the
   * observation determines them (training-mode batch norm, no batch-norm statistics matched):
   * attacks/intensity-prior.ts. Default true.
   */
  intensityPrior?: boolean;
  /**
   * Batches of 2 to LABEL_SEARCH_MAX_BATCH images: try every label set with a short run of the attack and keep
   * the one with the lowest attack loss, instead of trusting the bias-gradient estimate (which a trained
   * model's confident predictions defeat: 3 of 4 pairs wrong after one round). Default true.
   */
  labelSearch?: boolean;
  outDir?: string;
  log?: (line: string) => void;
}

export interface LeakageRunResult extends ScoreSummary {
  attack: AttackName;
  label_accuracy: number;
  /** Whether reconstructions were given the training set's brightness and contrast (attacks/intensity-prior.ts). */
  intensity_prior: boolean;
  /** Whether labels were chosen by trying every label set (labelSearch) rather than read off the gradient. */
  label_search: boolean;
  /**
   * The worst-case gap that guesses made without any observation reach under the same pairing (score.ts
   * chanceGap): 0 for single images; for a batch, a worst-case gap must exceed it to show leakage.
   */
  chance_gap_db: number;
  seconds: number;
  iterations_per_second: number;
}

export async function runLeakage(c: LeakageRunConfig): Promise<LeakageRunResult> {
  const shape: [number, number, number] = [c.model.input_size[0], c.model.input_size[1], c.model.channels];
  const pixels = sizeOf(shape);
  const params = c.saved ? paramsFromFlat(c.saved.sent) : c.weights ? paramsFromFlat(c.weights) : untrainedParams(c);
  const s: AttackSetting = {
    params, mode: c.bnMode, imageShape: shape, batch: c.batch, numClasses: c.model.num_classes,
    ...(c.aggregateWeights ? { aggregate: { weights: c.aggregateWeights, groupSize: c.batch / c.aggregateWeights.length } } : {}),
  };
  if (s.aggregate && !Number.isInteger(s.aggregate.groupSize)) throw new Error(`${c.batch} images cannot be split among ${c.aggregateWeights!.length} envoys`);
  const truths = split(c.images, pixels);
  const floorMean = meanImage(c.floorImages, pixels);
  const scores: ImageScore[] = [];
  const recon: Float32Array[] = [];
  let correctLabels = 0;
  let chance = 0;
  let seconds = 0;
  let iterations = 0;
  const bn = bnStatisticsOf(c, s);
  // Where the update does not pin brightness and contrast: every image of a gradient-matching attack, and the
  // images feature inversion did not match exactly (intensity-prior.ts).
  const prior = c.intensityPrior !== false && c.bnMode === 'train' && !bn ? intensityPrior(c.floorImages, pixels) : undefined;
  let priorApplied = false;
  for (let start = 0; start + c.batch <= truths.length; start += c.batch) {
    const images = c.images.slice(start * pixels, (start + c.batch) * pixels);
    const labels = c.labels.slice(start, start + c.batch);
    const observed = observe(c, s, images, labels);
    const estimate = recoverLabels(gradientEstimate(c, biasGradient(observed)), meanPrediction(s, c.seed), c.batch);
    const recovered = searchesLabels(c) ? bestLabels(c, s, observed, estimate, start, bn) : estimate;
    correctLabels += countMatches(recovered, labels);
    const r = attack(c, s, observed, recovered, start, bn, floorMean);
    tf.dispose(observed);
    seconds += r.seconds;
    iterations += r.iterations;
    const unpinned = ANALYTIC.includes(c.attack) ? (r.exact ?? []).map((e) => !e) : undefined;
    const adjust = prior && (!unpinned || unpinned.some(Boolean));
    priorApplied ||= !!adjust;
    const batchRecon = split(adjust ? applyIntensityPrior(r.images, pixels, prior, unpinned) : r.images, pixels);
    const batchTruths = truths.slice(start, start + c.batch);
    const batchScores = scoreBatch(batchTruths, batchRecon, floorMean, shape);
    chance = Math.max(chance, chanceGap(batchTruths, floorMean, c.floorImages, c.seed + 1));
    scores.push(...batchScores);
    recon.push(...batchScores.map((q) => batchRecon[q.reconstructionIndex]));
    c.log?.(`${c.attack} images ${start}..${start + c.batch - 1}: PSNR ${batchScores.map((q) => q.psnr.toFixed(2)).join(', ')} dB ` +
      `(floor ${batchScores.map((q) => q.floor.psnr.toFixed(2)).join(', ')}), loss ${r.loss.toExponential(3)}, ${r.seconds.toFixed(1)} s`);
  }
  disposeParams(params);
  tf.dispose(bn?.target.flatMap((m) => [m.mean, m.variance]));
  const result: LeakageRunResult = {
    attack: c.attack, ...summarize(scores), label_accuracy: correctLabels / Math.max(1, scores.length), intensity_prior: priorApplied,
    label_search: searchesLabels(c), seconds, chance_gap_db: chance,
    iterations_per_second: iterations / Math.max(1e-9, seconds),
  };
  if (c.outDir) await writeOutputs(c, result, truths.slice(0, recon.length), recon, shape);
  return result;
}

/**
 * Label recovery reads a gradient. An update Δ = w_K - w_0 of K SGD steps at rate η is about -η K times
 * the mean gradient (exactly for K = 1), so it is turned back into one: the sign matters even for one image.
 */
function gradientEstimate(c: LeakageRunConfig, bias: Float32Array): Float32Array {
  // Only the multi-step attack observes an update; the others get one already turned into a gradient.
  return c.attack === 'multistep' ? bias.map((v) => v * updateToGradient(c)) : bias;
}

/** K SGD steps at rate η moved the weights by about -η K times the gradient. */
function updateToGradient(c: LeakageRunConfig): number {
  return -1 / (c.localLearningRate * c.localSteps);
}

function localSteps(c: LeakageRunConfig) {
  return { steps: c.localSteps, learningRate: c.localLearningRate, optimizer: c.localOptimizer, momentum: c.localMomentum };
}

/** The untrained model's weights (copies), the model itself disposed. */
function untrainedParams(c: LeakageRunConfig): ConvNetParams {
  const model = buildModel(c.model);
  const params = paramsOfModel(model);
  model.dispose();
  return params;
}

function observe(c: LeakageRunConfig, s: AttackSetting, images: Float32Array, labels: Int32Array): TF.Tensor[] {
  if (c.saved) {
    const update = trainableUpdate(c.saved.delta, s.params);
    if (c.attack === 'multistep') return update;
    return update.map((t) => { const g = tf.mul(t, updateToGradient(c)); t.dispose(); return g; });
  }
  if (c.attack === 'multistep') return observeUpdate(s, images, labels, localSteps(c));
  return observeGradients(s, images, labels);
}

function attack(c: LeakageRunConfig, s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, salt: number, bnStatistics: BnStatistics | undefined, floorMean?: Float32Array) {
  const seed = c.seed * 7919 + salt;
  const ig = { iterations: c.iterations, restarts: c.restarts, learningRate: c.learningRate, tvWeight: c.tvWeight, seed, onIteration: undefined, bnStatistics };
  switch (c.attack) {
    case 'analytic':
    case 'precode-adaptive': {
      if (c.attack === 'precode-adaptive' && !s.params.precode) throw new Error('precode-adaptive attacks a model with PRECODE; use analytic for any model');
      // The first restart starts at the training set's mean image (dataset knowledge, like the floor's).
      const start = floorMean && Float32Array.from({ length: s.batch * floorMean.length }, (_, i) => floorMean[i % floorMean.length]);
      return analyticAttack(s, observed, labels, {
        ...FEATURE_INVERSION_DEFAULTS, iterations: c.iterations, restarts: c.restarts, learningRate: c.learningRate, seed, bnStatistics, start,
        polishIterations: c.polishIterations ?? FEATURE_INVERSION_DEFAULTS.polishIterations,
      });
    }
    case 'precode-ignore': return precodeIgnoreAttack(s, observed, labels, ig);
    case 'dlg': return dlg(s, observed, labels, { optimizer: 'lbfgs', iterations: c.iterations, seed });
    case 'dlg-adam': return dlg(s, observed, labels, { optimizer: 'adam', iterations: c.iterations, learningRate: c.learningRate, seed });
    case 'ig': return invertingGradients(s, observed, labels, ig);
    case 'multistep': return multiStepAttack(s, observed, labels, localSteps(c), ig);
  }
}

type BnStatistics = { target: BatchMoments[]; weight: number };

/** What the update's batch-norm statistics tell, when it is one training-mode step and the attack can use it. */
function bnStatisticsOf(c: LeakageRunConfig, s: AttackSetting): BnStatistics | undefined {
  const weight = c.bnStatisticsWeight ?? 10;
  if (!c.saved || !['ig', 'analytic', 'precode-adaptive', 'precode-ignore'].includes(c.attack) || c.bnMode !== 'train' || c.localSteps !== 1 || weight <= 0) return undefined;
  const target = observedMoments(s.params, c.saved.delta);
  return target && { target, weight };
}

const LABEL_SEARCH_MAX_BATCH = 3;

function searchesLabels(c: LeakageRunConfig): boolean {
  return c.labelSearch !== false && c.batch >= 2 && c.batch <= LABEL_SEARCH_MAX_BATCH && !ANALYTIC.includes(c.attack);
}

/**
 * The label set whose short attack run (a quarter of the iterations, at least 50) ends at the lowest loss; the
 * gradient's estimate goes first, so it wins ties. The same seed for every candidate: only the labels differ.
 */
function bestLabels(c: LeakageRunConfig, s: AttackSetting, observed: TF.Tensor[], estimate: Int32Array, salt: number, bn: BnStatistics | undefined): Int32Array {
  const short = { ...c, iterations: Math.max(50, Math.round(c.iterations / 4)), restarts: 1 };
  const same = (a: Int32Array, b: Int32Array) => a.every((v, i) => v === b[i]);
  const candidates = [estimate, ...labelCandidates(c.batch, s.numClasses).filter((l) => !same(l, estimate))];
  let best = { labels: estimate, loss: Infinity };
  for (const labels of candidates) {
    const { loss } = attack(short, s, observed, labels, salt, bn);
    c.log?.(`  labels [${labels.join(', ')}]: loss ${loss.toExponential(3)} after ${short.iterations} iterations`);
    if (loss < best.loss) best = { labels, loss };
  }
  return best.labels;
}

function countMatches(recovered: Int32Array, truth: Int32Array): number {
  const sorted = [...truth].sort((a, b) => a - b);
  return [...recovered].filter((v, i) => v === sorted[i]).length;
}

function paramsFromFlat(w: FlatWeights): ConvNetParams {
  return paramsFromNamed(w.manifest.map((t) => t.name), toTensors(w));
}

/** The trainable tensors of an update (received - sent), in the attack's order. */
function trainableUpdate(delta: FlatWeights, params: ConvNetParams): TF.Tensor[] {
  const tensors = toTensors(delta);
  const update = trainableNamesOf(params).map((name) => {
    const i = delta.manifest.findIndex((t) => t.name === name);
    if (i < 0) throw new Error(`the update lacks ${name}`);
    return tensors[i];
  });
  tf.dispose(tensors.filter((t) => !update.includes(t)));
  return update;
}

async function writeOutputs(c: LeakageRunConfig, result: LeakageRunResult, truth: Float32Array[], recon: Float32Array[], shape: [number, number, number]) {
  mkdirSync(c.outDir!, { recursive: true });
  await writeGrid(join(c.outDir!, `${c.attack}-grid.png`), [truth, recon], shape);
  const { images, ...rest } = result;
  const settings = { ...c, images: undefined, labels: undefined, floorImages: undefined, log: undefined, weights: undefined, saved: undefined };
  writeFileSync(join(c.outDir!, `${c.attack}-summary.json`), JSON.stringify({ ...rest, settings, images }, null, 2) + '\n');
}
