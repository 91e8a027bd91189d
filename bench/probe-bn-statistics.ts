/**
 * How much the batch-norm statistics in a one-step update help Inverting Gradients: one envoy-style probe
 * (one plain SGD step on one PneumoniaMNIST training image, trained by the envoy's own trainLocal) attacked
 * with and without matching the statistics.
 *
 *   npx tsx bench/probe-bn-statistics.ts <init he|torch> <width> <bn-statistics weight> <iterations> [image index]
 *   PRECODE=1 ATTACK=precode-adaptive npx tsx bench/probe-bn-statistics.ts he 16 10 500
 */
import { resolve } from 'node:path';
import { ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';
import { readWeights } from '../ts/core/weights.ts';
import { runLeakage, type AttackName } from '../ts/leakage/run.ts';

const [init = 'he', width = '16', bnWeight = '10', iterations = '1000', index = '0'] = process.argv.slice(2);
const data = process.env.SECFLOW_DATA ?? resolve(import.meta.dirname, '..', '..', 'shared', 'data', 'pneumoniamnist.npz');
const spec = ModelSpecSchema.parse({ width: Number(width), seed: 1, init, precode: { enabled: process.env.PRECODE === '1' } });
const model = buildModel(spec);
const train = loadPneumoniaMnist(data, 'train');
const victim = subset(train, [Number(index)]);
const sent = readWeights(model);
const lr = 1e-3;
await trainLocal(model, victim, { config: TrainingSchema.parse({ optimizer: 'sgd', momentum: 0, learning_rate: lr, batch_size: 1, local_epochs: 1 }) });
const after = readWeights(model);
const delta = { manifest: after.manifest, values: after.values.map((v, i) => v - sent.values[i]) };
const r = await runLeakage({
  attack: (process.env.ATTACK ?? 'ig') as AttackName, model: spec, bnMode: 'train', images: victim.images, labels: victim.labels, batch: 1,
  floorImages: train.images, iterations: Number(iterations), restarts: 1, learningRate: 0.1, tvWeight: 1e-4, seed: 0,
  localSteps: 1, localLearningRate: lr, saved: { sent, delta }, bnStatisticsWeight: Number(bnWeight),
});
console.log(JSON.stringify({ init, width: Number(width), precode: spec.precode.enabled, attack: r.attack, bn_statistics_weight: Number(bnWeight),
  iterations: Number(iterations), psnr: r.psnr_mean, ssim: r.ssim_mean, floor_psnr: r.floor_psnr_mean, iterations_per_second: r.iterations_per_second }));
