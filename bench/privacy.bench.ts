/**
 * DP-SGD cost: time of one DP-SGD step (vectorized per-example gradients, and one backward pass per
 * example) against one plain batched step, on ConvNetBN with PneumoniaMNIST batches; and the time the RDP
 * accountant takes per round.
 *
 *   npx tsx bench/privacy.bench.ts [--reps 5] [--out bench/results/privacy.json]
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';
import { batchOf } from '../ts/core/data/batches.ts';
import { GaussianNoise, dpSgdStep, type GradientMethod, type PerExampleLoss } from '../ts/core/privacy/dp-sgd.ts';
import { RdpAccountant } from '../ts/core/privacy/rdp-accountant.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const REPS = Number(arg('reps') ?? 5);
const DATA = process.env.SECFLOW_DATA ?? resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'pneumoniamnist.npz');
const train = loadPneumoniaMnist(DATA, 'train');
const perExample: PerExampleLoss = (logits, y) =>
  tf.losses.softmaxCrossEntropy(tf.oneHot(y, 2), logits, undefined, 0, tf.Reduction.NONE) as TF.Tensor1D;

/** Median milliseconds of `REPS` runs of `step` after one warm-up run. */
function medianMs(step: () => void): number {
  step();
  const times = Array.from({ length: REPS }, () => {
    const started = performance.now();
    step();
    return performance.now() - started;
  });
  return times.sort((a, b) => a - b)[Math.floor(REPS / 2)];
}

function measure(width: number, batch: number) {
  const model = buildModel(ModelSpecSchema.parse({ width, seed: 0 }));
  const optimizer = tf.train.momentum(0.01, 0.9);
  const { x, y } = batchOf(train, [...Array(batch).keys()]);
  const noise = new GaussianNoise();
  // The plain step as trainLocal takes it: mean loss, BatchNorm in training mode, the loss read back.
  const plain = medianMs(() => {
    const loss = optimizer.minimize(() => perExample(model.apply(x, { training: true }) as TF.Tensor2D, y).mean() as TF.Scalar, true)!;
    loss.dataSync();
    loss.dispose();
  });
  const dp = (gradientMethod: GradientMethod) => medianMs(() => {
    dpSgdStep(model, optimizer, x, y, perExample, { clipNorm: 1, noiseMultiplier: 1, gradientMethod }, noise);
  });
  const vectorized = dp('vectorized');
  const loop = dp('loop');
  tf.dispose([x, y]);
  optimizer.dispose();
  return {
    width, batch, parameters: model.countParams(), plain_ms: plain, dp_vectorized_ms: vectorized, dp_loop_ms: loop,
    vectorized_over_plain: vectorized / plain, loop_over_plain: loop / plain,
  };
}

/** Mean milliseconds an envoy spends on the accountant per round (step, then ε), over a year of daily rounds. */
function accountantMsPerRound(): number {
  const accountant = new RdpAccountant();
  const started = performance.now();
  // The sampling rate drifts as the shard grows, so no two rounds merge into one run.
  for (let day = 0; day < 365; day++) {
    accountant.step(1.1, 32 / (2000 + day), 63);
    accountant.epsilon(1e-5);
  }
  return (performance.now() - started) / 365;
}

const results = {
  backend: tf.getBackend(), reps: REPS,
  steps: [measure(8, 32), measure(32, 32), measure(32, 64)],
  accountant_ms_per_round: accountantMsPerRound(),
};
console.log(JSON.stringify(results, null, 1));
const out = arg('out');
if (out) writeFileSync(out, JSON.stringify(results, null, 1) + '\n');
