/**
 * Where an envoy's training step goes (not a test): one ConvNetBN step (width 32, 28x28, batch 64, Adam) split
 * into data feeding, forward, forward + backward and the optimizer step, then the backward pass's kernels by
 * tfjs's profiler, the slowest first. For issue 15's training gap against PyTorch (bench/RESULTS.md).
 *
 *   npx tsx bench/training-profile.ts [--width 32] [--steps 20] [--data ../shared/data/pneumoniamnist.npz]
 */
import { parseArgs } from 'node:util';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { batchOf } from '../ts/core/data/batches.ts';
import { findPneumoniaMnist } from '../ts/core/data/fetch.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';

const { values: args } = parseArgs({ options: { width: { type: 'string', default: '32' }, steps: { type: 'string', default: '20' }, data: { type: 'string' } } });
const BATCH = 64;
const steps = Number(args.steps);
const ds = loadPneumoniaMnist(findPneumoniaMnist(args.data, 'pass --data'), 'train', 512);
const model = buildModel(ModelSpecSchema.parse({ width: Number(args.width) }));
const optimizer = tf.train.adam(1e-3);
const indices = [...Array(BATCH).keys()];
const { x, y } = batchOf(ds, indices);
const loss = () => tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 2), model.apply(x, { training: true }) as TF.Tensor2D) as TF.Scalar);
const backward = () => { const { value, grads } = tf.variableGrads(loss); value.dataSync(); tf.dispose([value, ...Object.values(grads)]); };

function time(label: string, step: () => void): void {
  for (let i = 0; i < 3; i++) step(); // warm-up
  const started = performance.now();
  for (let i = 0; i < steps; i++) step();
  const ms = (performance.now() - started) / steps;
  console.log(`${label.padEnd(26)} ${ms.toFixed(1).padStart(7)} ms/step  ${(BATCH / ms * 1000).toFixed(0).padStart(7)} images/s`);
}

console.log(`ConvNetBN width ${args.width}, batch ${BATCH}, ${steps} steps each after 3 warm-up steps`);
time('data (batchOf)', () => { const b = batchOf(ds, indices); tf.dispose([b.x, b.y]); });
time('forward (training mode)', () => tf.tidy(() => { (model.apply(x, { training: true }) as TF.Tensor).dataSync(); }));
time('forward + backward', backward);
time('whole step (Adam)', () => { const l = optimizer.minimize(loss, true)!; l.dataSync(); l.dispose(); });

const profile = await tf.profile(backward);
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of profile.kernels) {
  const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  entry.calls++;
  byKernel.set(k.name, entry);
}
const total = [...byKernel.values()].reduce((a, b) => a + b.ms, 0);
console.log(`forward + backward under the profiler: ${profile.kernels.length} kernels, ${total.toFixed(1)} ms of kernel time`);
for (const [name, k] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
  console.log(`  ${name.padEnd(24)} ${k.ms.toFixed(1).padStart(7)} ms  ${String(k.calls).padStart(3)} calls`);
}
