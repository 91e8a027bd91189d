/**
 * What the lab's own Mean/Sum gradients (ts/leakage/second-order.ts: broadcast against a TensorFlow onesLike)
 * buy over tfjs-core's (a `ones(x.shape)` filled in JavaScript), on the step that dominates the defaults
 * audit: one Inverting Gradients step (loss and its gradient w.r.t. the images) on a secure sum of 3 envoys
 * × 64 images, ConvNetBN width 16 with PRECODE, training-mode batch norm per envoy. Both in this process,
 * alternating, so load on the machine hits both alike. Writes bench/results/second-order-speed.json.
 *
 *   npx tsx bench/second-order-speed.bench.ts [--steps 5] [--pairs 3]
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';

// tfjs-core's own gradients, taken before the lab replaces them.
const REPLACED = ['Mean', 'Sum'] as const;
const tfjsOwn = REPLACED.map((k) => tf.getGradient(k)!);
const { registerSecondOrderGradients } = await import('../ts/leakage/second-order.ts');
registerSecondOrderGradients();
const labOwn = REPLACED.map((k) => tf.getGradient(k)!);
const { ModelSpecSchema } = await import('../ts/core/config/experiment.ts');
const { buildModel } = await import('../ts/core/model.ts');
const { paramsOfModel } = await import('../ts/leakage/functional-model.ts');
const { igObjective } = await import('../ts/leakage/attacks/inverting-gradients.ts');
const { modelGradients } = await import('../ts/leakage/attacks/common.ts');

const { values: args } = parseArgs({ options: { steps: { type: 'string', default: '5' }, pairs: { type: 'string', default: '3' } } });
const ENVOYS = 3, PER_ENVOY = 64, BATCH = ENVOYS * PER_ENVOY;

const spec = ModelSpecSchema.parse({ width: 16, seed: 1, precode: { enabled: true, code_size: 256, beta: 1e-3 } });
const setting = {
  params: paramsOfModel(buildModel(spec)), mode: 'train' as const, imageShape: [28, 28, 1] as [number, number, number], batch: BATCH, numClasses: 2,
  aggregate: { weights: Array(ENVOYS).fill(1 / ENVOYS), groupSize: PER_ENVOY },
};
const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, i) => i % 2), 'int32'), 2).toFloat() as TF.Tensor2D;
const truth = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 1) as TF.Tensor4D;
const observed = tf.tidy(() => modelGradients(setting, truth, labels).map((t) => tf.keep(t)));
const objective = igObjective(setting, observed, labels, { iterations: 1, restarts: 1, learningRate: 0.1, tvWeight: 1e-4, seed: 0 });
const valueAndGrad = tf.valueAndGrad(objective as (x: TF.Tensor) => TF.Scalar);
const dummy = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 2) as TF.Tensor4D;

function use(configs: TF.GradConfig[]): void {
  for (const c of configs) { tf.unregisterGradient(c.kernelName); tf.registerGradient(c); }
}

/** Milliseconds per step, and the step's loss and gradient norm (which must not depend on the gradients used). */
function timeSteps(configs: TF.GradConfig[], steps: number): { ms: number; loss: number; gradNorm: number } {
  use(configs);
  const step = () => tf.tidy(() => { const { value, grad } = valueAndGrad(dummy); return [value.dataSync()[0], tf.norm(grad).dataSync()[0]]; });
  step(); // warm-up: kernels and allocations
  const started = performance.now();
  let last = [0, 0];
  for (let i = 0; i < steps; i++) last = step();
  return { ms: (performance.now() - started) / steps, loss: last[0], gradNorm: last[1] };
}

const steps = Number(args.steps);
const pairs = Array.from({ length: Number(args.pairs) }, () => {
  const tfjs = timeSteps(tfjsOwn, steps);
  const lab = timeSteps(labOwn, steps);
  const agree = Math.abs(tfjs.gradNorm - lab.gradNorm) <= 1e-4 * Math.abs(tfjs.gradNorm);
  if (!agree) throw new Error(`the two gradients disagree: |grad| ${tfjs.gradNorm} (tfjs) vs ${lab.gradNorm} (lab)`);
  console.log(`tfjs-core's Mean/Sum gradients ${tfjs.ms.toFixed(0)} ms a step, the lab's ${lab.ms.toFixed(0)} ms: ${(tfjs.ms / lab.ms).toFixed(2)}x (|grad| ${lab.gradNorm.toExponential(4)} both)`);
  return { tfjs_ms: tfjs.ms, lab_ms: lab.ms, speedup: tfjs.ms / lab.ms };
});
const sorted = pairs.map((p) => p.speedup).sort((a, b) => a - b);
const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'second-order-speed.json');
writeFileSync(out, `${JSON.stringify({
  command: `npx tsx bench/second-order-speed.bench.ts --steps ${steps} --pairs ${pairs.length}`,
  machine: { cpus: cpus().length, load_average_at_end: loadavg()[0] },
  setting: 'Inverting Gradients step, secure sum of 3 x 64 images, ConvNetBN width 16 with PRECODE, training-mode batch norm per envoy',
  ig_step_speedup_median: sorted[Math.floor(sorted.length / 2)], pairs,
}, null, 2)}\n`);
console.log(`written: ${out}`);
