/**
 * GPU check (not a test): trains one envoy's model on the GPU and on the CPU, each in its own process (the
 * binding is chosen at start-up), and prints images per second and the ratio. Run through bench/gpu-check.sh.
 * Where there is no GPU (or no tfjs-node-gpu), the `gpu` run says so and trains on the CPU.
 *
 *   npx tsx bench/gpu-check.ts [--steps 40] [--width 32] [--batch 64] [--data ../shared/data/pneumoniamnist.npz]
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPneumoniaMnist } from '../ts/core/data/fetch.ts';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' }, width: { type: 'string', default: '32' }, batch: { type: 'string', default: '64' },
    data: { type: 'string' }, child: { type: 'boolean', default: false },
  },
});
const options = { data: findPneumoniaMnist(args.data, 'pass --data'), width: Number(args.width), batch: Number(args.batch), steps: Number(args.steps) };

interface DeviceRun { device: string; backend: string; fallback: string | null; images_per_second: number }

if (args.child) {
  // TensorFlow loads here, after SECFLOW_DEVICE was set by the parent.
  const { backendName, describeBackend, deviceFallback } = await import('../ts/core/tf.ts');
  const { trainingThroughput } = await import('./training-throughput.ts');
  const imagesPerSecond = await trainingThroughput(options);
  const run: DeviceRun = { device: process.env.SECFLOW_DEVICE!, backend: `${backendName}: ${describeBackend()}`, fallback: deviceFallback ?? null, images_per_second: imagesPerSecond };
  console.log(JSON.stringify(run));
} else {
  const runs = ['gpu', 'cpu'].map((device): DeviceRun => {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--steps', args.steps!, '--width', args.width!, '--batch', args.batch!, '--data', options.data],
      { encoding: 'utf8', env: { ...process.env, SECFLOW_DEVICE: device }, cwd: resolve(fileURLToPath(import.meta.url), '..', '..') });
    if (r.status !== 0) throw new Error(`the ${device} run failed:\n${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  });
  console.log(`ConvNetBN width ${options.width}, 28x28, batch ${options.batch}, Adam, ${options.steps} steps after a 3-step warm-up`);
  for (const run of runs) {
    console.log(`  device ${run.device}: ${run.images_per_second.toFixed(1)} images/s on ${run.backend}${run.fallback ? `\n    (${run.fallback})` : ''}`);
  }
  const [gpu, cpu] = runs;
  console.log(`gpu_vs_cpu_train_ratio ${(gpu.images_per_second / cpu.images_per_second).toFixed(2)}${gpu.fallback ? ' (no GPU here: both ran on the CPU)' : ''}`);
}
