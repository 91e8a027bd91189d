/**
 * ConvNetBN's forward pass as a pure function of its weight tensors. The attacker needs the model's
 * gradient w.r.t. its weights as a differentiable function of the (dummy) input, and for the multi-step
 * attack also of weights that change during the simulated local steps: a layers model holds its weights in
 * variables, which neither allows. Checked in tests to give the layers model's outputs exactly, with and
 * without the PRECODE bottleneck (so adaptive attacks can attack through that defense).
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';
import type { LayersModel } from '../core/model.ts';
import { decode, encodeStats, klDivergence, PRECODE_WEIGHT_NAMES, reparameterize } from '../core/defenses/precode.ts';
import { ARCHITECTURES, layoutWithBlocks, type ConvLayout } from '../core/architectures.ts';
import './second-order.ts';

/** Keras' BatchNormalization default, which tfjs-layers uses. */
const BN_EPSILON = 1e-3;
const CONV_BLOCKS = ARCHITECTURES.convnet_bn.widthMultipliers.length;

/** ConvNetBN weights by role; `trainable` is the order the envoy's gradient/update lists them in. */
export interface ConvNetParams {
  /** Where the pools are and how features reach the classifier (the registry's, by block count). */
  layout: ConvLayout;
  convs: TF.Tensor4D[];
  gammas: TF.Tensor1D[];
  betas: TF.Tensor1D[];
  movingMeans: TF.Tensor1D[];
  movingVars: TF.Tensor1D[];
  denseKernel: TF.Tensor2D;
  denseBias: TF.Tensor1D;
  /** The PRECODE bottleneck's weights, when the model has one (ts/core/defenses/precode.ts). */
  precode?: PrecodeParams;
  /** How the attacker models the envoy's PRECODE training pass; absent: the mean code and no KL term. */
  precodeTraining?: PrecodeTraining;
}

export interface PrecodeParams {
  encoderKernel: TF.Tensor2D;
  encoderBias: TF.Tensor1D;
  decoderKernel: TF.Tensor2D;
  decoderBias: TF.Tensor1D;
}

/**
 * The envoy's PRECODE layer samples z = mu + std·eps with private noise eps and adds beta·KL to its loss.
 * An attacker knows beta (it is in the experiment config) but not eps, so by default it uses the mean
 * code; `noise` ([batch, K]) replays a known draw (tests, or an attacker that guesses or optimizes eps).
 * The noise applies in 'train' mode only, as the layer samples only when training; the KL term enters
 * weightGradients in both modes whenever beta > 0 (in this lab the mode only chooses batch-norm statistics).
 */
export interface PrecodeTraining {
  beta: number;
  noise?: TF.Tensor2D;
}

/** 'train' normalizes with the batch's statistics (as the envoy trains); 'eval' with the moving ones. */
/**
 * 'train': batch statistics over the whole batch, as an envoy trains; 'eval': the moving statistics;
 * 'per-image': training-mode statistics of each image alone, so a batch holds independent one-image problems
 * (the analytic attack inverts all the rows of an aggregate at once this way).
 */
export type BnMode = 'train' | 'eval' | 'per-image';

/**
 * ConvNetBN's weights by their names (as in model.weights and the weights manifest: `conv0/kernel`,
 * `bn0/gamma`, ..., `classifier/bias`); names decide roles, since model.weights lists trainable ones first.
 */
export function paramsFromNamed(names: string[], tensors: TF.Tensor[]): ConvNetParams {
  const byName = new Map(names.map((n, i) => [n, tensors[i]]));
  const extra = names.filter((n) => !/^(conv\d+|bn\d+|classifier)\//.test(n) && !PRECODE_WEIGHT_NAMES.includes(n));
  if (extra.length) throw new Error(`not a ConvNetBN (unknown weights: ${extra.join(', ')}); of the defenses' layers only PRECODE is supported`);
  const get = (n: string) => {
    const t = byName.get(n);
    if (!t) throw new Error(`ConvNetBN weight ${n} missing (have: ${names.join(', ')})`);
    return t;
  };
  const blockCount = new Set(names.filter((n) => /^conv\d+\//.test(n)).map((n) => n.split('/')[0])).size;
  const blocks = [...Array(blockCount).keys()];
  return {
    layout: layoutWithBlocks(blockCount),
    convs: blocks.map((b) => get(`conv${b}/kernel`) as TF.Tensor4D),
    gammas: blocks.map((b) => get(`bn${b}/gamma`) as TF.Tensor1D),
    betas: blocks.map((b) => get(`bn${b}/beta`) as TF.Tensor1D),
    movingMeans: blocks.map((b) => get(`bn${b}/moving_mean`) as TF.Tensor1D),
    movingVars: blocks.map((b) => get(`bn${b}/moving_variance`) as TF.Tensor1D),
    denseKernel: get('classifier/kernel') as TF.Tensor2D,
    denseBias: get('classifier/bias') as TF.Tensor1D,
    ...(names.some((n) => n.startsWith('precode/')) ? { precode: precodeFromNamed(get) } : {}),
  };
}

function precodeFromNamed(get: (name: string) => TF.Tensor): PrecodeParams {
  const [encoderKernel, encoderBias, decoderKernel, decoderBias] = PRECODE_WEIGHT_NAMES.map(get);
  return {
    encoderKernel: encoderKernel as TF.Tensor2D, encoderBias: encoderBias as TF.Tensor1D,
    decoderKernel: decoderKernel as TF.Tensor2D, decoderBias: decoderBias as TF.Tensor1D,
  };
}

/** The model's current weights (copies: the caller owns and disposes them). */
export function paramsOfModel(model: LayersModel): ConvNetParams {
  return paramsFromNamed(model.weights.map((w) => w.originalName), model.weights.map((w) => w.read().clone()));
}

/**
 * Names of the trainable tensors in trainableOf's order, which is model.trainableWeights' order: the conv
 * blocks, then PRECODE's four (if `precode`), then the classifier.
 */
export function trainableNames(blocks = CONV_BLOCKS, options: { precode?: boolean } = {}): string[] {
  const conv = [...Array(blocks).keys()].flatMap((b) => [`conv${b}/kernel`, `bn${b}/gamma`, `bn${b}/beta`]);
  return [...conv, ...(options.precode ? PRECODE_WEIGHT_NAMES : []), 'classifier/kernel', 'classifier/bias'];
}

/** trainableNames for these parameters (with PRECODE's names if they include it). */
export function trainableNamesOf(p: ConvNetParams): string[] {
  return trainableNames(p.convs.length, { precode: p.precode !== undefined });
}

export function trainableOf(p: ConvNetParams): TF.Tensor[] {
  const blocks = p.convs.flatMap((c, i) => [c, p.gammas[i], p.betas[i]]);
  const pre = p.precode;
  const precode = pre ? [pre.encoderKernel, pre.encoderBias, pre.decoderKernel, pre.decoderBias] : [];
  return [...blocks, ...precode, p.denseKernel, p.denseBias];
}

export function withTrainable(p: ConvNetParams, trainable: TF.Tensor[]): ConvNetParams {
  const blocks = p.convs.map((_, i) => i);
  const at = (i: number) => trainable[3 * p.convs.length + i];
  const precodeCount = p.precode ? 4 : 0;
  return {
    ...p,
    convs: blocks.map((i) => trainable[3 * i] as TF.Tensor4D),
    gammas: blocks.map((i) => trainable[3 * i + 1] as TF.Tensor1D),
    betas: blocks.map((i) => trainable[3 * i + 2] as TF.Tensor1D),
    ...(p.precode ? {
      precode: {
        encoderKernel: at(0) as TF.Tensor2D, encoderBias: at(1) as TF.Tensor1D,
        decoderKernel: at(2) as TF.Tensor2D, decoderBias: at(3) as TF.Tensor1D,
      },
    } : {}),
    denseKernel: at(precodeCount) as TF.Tensor2D,
    denseBias: at(precodeCount + 1) as TF.Tensor1D,
  };
}

/** Disposes the weights; precodeTraining.noise belongs to whoever supplied it. */
export function disposeParams(p: ConvNetParams): void {
  tf.dispose([...p.convs, ...p.gammas, ...p.betas, ...p.movingMeans, ...p.movingVars, p.denseKernel, p.denseBias]);
  if (p.precode) tf.dispose(Object.values(p.precode));
}

/**
 * Batch normalization as tfjs-layers computes it. In 'train' mode it is written out with elementwise ops
 * rather than tf.batchNorm: the FusedBatchNorm gradient made the second-order pass ~7x slower (measured
 * 190 vs 27 ms per DLG evaluation at width 4).
 */
function batchNorm(h: TF.Tensor4D, p: ConvNetParams, i: number, mode: BnMode, moments?: BatchMoments[]): TF.Tensor4D {
  if (mode === 'eval') return tf.batchNorm(h, p.movingMeans[i], p.movingVars[i], p.betas[i], p.gammas[i], BN_EPSILON);
  if (mode === 'per-image') {
    const { mean, variance } = tf.moments(h, [1, 2], true);
    return tf.add(tf.mul(tf.sub(h, mean), tf.mul(p.gammas[i], tf.rsqrt(tf.add(variance, BN_EPSILON)))), p.betas[i]);
  }
  const { mean, variance } = tf.moments(h, [0, 1, 2]);
  moments?.push({ mean: mean as TF.Tensor1D, variance: variance as TF.Tensor1D });
  const scale = tf.mul(p.gammas[i], tf.rsqrt(tf.add(variance, BN_EPSILON)));
  return tf.add(tf.mul(tf.sub(h, mean), scale), p.betas[i]);
}

/** Per-channel mean and (biased) variance of one batch-norm layer's input, as training mode computes them. */
export interface BatchMoments { mean: TF.Tensor1D; variance: TF.Tensor1D }

/** The batch statistics every batch-norm layer sees for this batch in training mode (differentiable in x). */
export function batchMoments(p: ConvNetParams, x: TF.Tensor4D): BatchMoments[] {
  const moments: BatchMoments[] = [];
  forwardWithKl(p, x, 'train', moments);
  return moments;
}

/** The conv blocks' output, pooled to one feature row per image: the input of PRECODE (or of the classifier). */
export function convFeatures(p: ConvNetParams, x: TF.Tensor4D, mode: BnMode, moments?: BatchMoments[]): TF.Tensor2D {
  let h: TF.Tensor4D = x;
  for (let i = 0; i < p.convs.length; i++) {
    h = tf.relu(batchNorm(tf.conv2d(h, p.convs[i], 1, 'same'), p, i, mode, moments));
    if (p.layout.poolAfter.includes(i)) h = tf.maxPool(h, 2, 2, 'valid');
  }
  if (p.layout.head === 'global_average') return tf.mean(h, [1, 2]) as TF.Tensor2D;
  h = tf.maxPool(h, 3, 3, 'valid');
  return tf.reshape(h, [h.shape[0], -1]) as TF.Tensor2D;
}

export function forward(p: ConvNetParams, x: TF.Tensor4D, mode: BnMode): TF.Tensor2D {
  return forwardWithKl(p, x, mode).logits;
}

/** The logits and, with PRECODE, the KL (bits) of its code as the layer computes it (else undefined). */
export function forwardWithKl(p: ConvNetParams, x: TF.Tensor4D, mode: BnMode, moments?: BatchMoments[]): { logits: TF.Tensor2D; kl?: TF.Scalar } {
  let flat = convFeatures(p, x, mode, moments);
  let kl: TF.Scalar | undefined;
  if (p.precode) ({ features: flat, kl } = precodeForward(p.precode, p.precodeTraining, flat, mode));
  return { logits: tf.add(tf.matMul(flat, p.denseKernel), p.denseBias), kl };
}

function precodeForward(w: PrecodeParams, training: PrecodeTraining | undefined, x: TF.Tensor2D, mode: BnMode): { features: TF.Tensor2D; kl: TF.Scalar } {
  const stats = encodeStats(x, w.encoderKernel, w.encoderBias);
  const z = mode !== 'eval' && training?.noise ? reparameterize(stats, training.noise) : stats.mu;
  return { features: decode(z, w.decoderKernel, w.decoderBias), kl: klDivergence(stats) };
}

/**
 * Mean softmax cross-entropy against (soft or one-hot) label rows, as tf.losses.softmaxCrossEntropy computes
 * it, but written out with ops: that one's customGrad gives a wrong second derivative (measured: the
 * gradient-matching gradient through it disagrees with finite differences; through this one it agrees).
 */
export function crossEntropy(logits: TF.Tensor2D, labels: TF.Tensor2D): TF.Scalar {
  const logProbs = tf.sub(logits, tf.logSumExp(logits, 1, true));
  return tf.neg(tf.mean(tf.sum(tf.mul(labels, logProbs), 1))) as TF.Scalar;
}

/**
 * The envoy's gradient: d(loss)/d(trainable weights), differentiable w.r.t. x (and labels). The loss is the
 * cross-entropy, plus beta·KL when the parameters carry PRECODE with precodeTraining.beta > 0.
 */
export function weightGradients(p: ConvNetParams, x: TF.Tensor4D, labels: TF.Tensor2D, mode: BnMode): TF.Tensor[] {
  const trainable = trainableOf(p);
  const beta = p.precodeTraining?.beta ?? 0;
  return tf.grads((...w: TF.Tensor[]) => {
    const { logits, kl } = forwardWithKl(withTrainable(p, w), x, mode);
    const ce = crossEntropy(logits, labels);
    return kl && beta > 0 ? tf.add(ce, tf.mul(kl, beta)) as TF.Scalar : ce;
  })(trainable);
}

/**
 * What a secure aggregate of one-image updates reveals: Σᵢ wᵢ · gradient(xᵢ), each image's gradient taken on
 * its own (its own batch-norm statistics, its own envoy), weighted as FedAvg weighed the envoys. Not the
 * gradient of one joint batch, which is what the aggregate would be only if one envoy had trained on all.
 */
export function aggregateGradients(p: ConvNetParams, x: TF.Tensor4D, labels: TF.Tensor2D, a: { weights: number[]; groupSize: number }, mode: BnMode): TF.Tensor[] {
  const [n, h, w, c] = x.shape;
  const k = a.groupSize;
  if (a.weights.length * k !== n) throw new Error(`${a.weights.length} envoys of ${k} images each, but ${n} images`);
  const per = a.weights.map((we, e) =>
    weightGradients(p, tf.slice(x, [e * k, 0, 0, 0], [k, h, w, c]), tf.slice(labels, [e * k, 0], [k, -1]), mode).map((g) => tf.mul(g, we)));
  return per[0].map((_, i) => tf.addN(per.map((g) => g[i])));
}

/** The batch statistics a secure aggregate carries: Σₑ wₑ · moments(batchₑ) (see aggregateGradients). */
export function aggregateMoments(p: ConvNetParams, x: TF.Tensor4D, a: { weights: number[]; groupSize: number }): BatchMoments[] {
  const [, h, w, c] = x.shape;
  const per = a.weights.map((we, e) => batchMoments(p, tf.slice(x, [e * a.groupSize, 0, 0, 0], [a.groupSize, h, w, c]))
    .map((m) => ({ mean: tf.mul(m.mean, we) as TF.Tensor1D, variance: tf.mul(m.variance, we) as TF.Tensor1D })));
  return per[0].map((_, i) => ({ mean: tf.addN(per.map((m) => m[i].mean)) as TF.Tensor1D, variance: tf.addN(per.map((m) => m[i].variance)) as TF.Tensor1D }));
}

/**
 * The conv blocks' weight gradients when the gradient arriving at their output (the flattened features)
 * is `upstream`: ∂⟨features(x), upstream⟩/∂θ. With `upstream` read off an update (PRECODE's encoder gives it
 * exactly), these are the envoy's own conv gradients, whatever the stochastic layer after them did.
 */
export function convGradients(p: ConvNetParams, x: TF.Tensor4D, upstream: TF.Tensor2D, mode: BnMode): TF.Tensor[] {
  const conv = p.convs.flatMap((k, i) => [k, p.gammas[i], p.betas[i]]);
  return tf.grads((...w: TF.Tensor[]) => {
    const q = { ...p, convs: p.convs.map((_, i) => w[3 * i] as TF.Tensor4D), gammas: p.gammas.map((_, i) => w[3 * i + 1] as TF.Tensor1D), betas: p.betas.map((_, i) => w[3 * i + 2] as TF.Tensor1D) };
    return tf.sum(tf.mul(convFeatures(q, x, mode), upstream)) as TF.Scalar;
  })(conv);
}
