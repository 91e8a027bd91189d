/**
 * Federation bench (not a test): writes bench/results/federation.json.
 *  1. Envoy training throughput, ConvNetBN width 32 at 28x28, batch 64, Adam: tfjs (the envoy's own
 *     training loop) beside PyTorch CPU on the same images, run one after the other by this script.
 *  2. Protocol overhead: wall time of one federated round with 3 envoy processes ÷ the slowest envoy's
 *     local training time in that round.
 * usage: npm run bench:federation [-- --steps 40 --rounds 2 --python /path/to/python-with-torch]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ExperimentSchema, ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { loadConfigFile } from '../ts/core/config/load.ts';
import { subset } from '../ts/core/data/dataset.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import type { ExperimentEvent } from '../ts/core/messages.ts';
import { buildModel } from '../ts/core/model.ts';
import { backendName } from '../ts/core/tf.ts';
import { trainLocal } from '../ts/core/training.ts';
import { connectNats } from '../ts/core/transport/connection.ts';
import { runExperimentRemotely } from '../ts/experiment/client.ts';
import { writeFederationFiles } from '../ts/local/federation-files.ts';
import { startLocalNats } from '../ts/local/nats-server.ts';
import { spawnRole, waitForOutput } from '../ts/local/roles.ts';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    rounds: { type: 'string', default: '2' },
    width: { type: 'string', default: '32' },
    python: { type: 'string', default: process.env.SECFLOW_BENCH_PYTHON ?? join(process.env.HOME ?? '', '.cache/fl-secflow/bench-venv/bin/python') },
    data: { type: 'string', default: '../shared/data/pneumoniamnist.npz' },
  },
});
const BENCH = resolve('bench');
const data = resolve(args.data!);
const width = Number(args.width);
const batch = 64;

async function tfjsThroughput(steps: number): Promise<number> {
  const images = subset(loadPneumoniaMnist(data, 'train'), [...Array(batch * 8).keys()]);
  const model = buildModel(ModelSpecSchema.parse({ width }));
  const config = TrainingSchema.parse({ batch_size: batch, learning_rate: 1e-3 });
  await trainLocal(model, images, { config: { ...config, local_epochs: 3 / 8 } }); // warm-up: 3 steps
  const result = await trainLocal(model, images, { config: { ...config, local_epochs: steps / 8 } });
  return (result.steps * batch) / result.seconds;
}

function torchThroughput(steps: number): { images_per_second: number; torch: string } | { error: string } {
  const r = spawnSync(args.python!, [join(BENCH, 'torch_train.py'), data, String(width), String(batch), String(steps), '2'], { encoding: 'utf8' });
  if (r.status !== 0) return { error: `PyTorch run failed (${args.python}): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function roundOverhead(rounds: number) {
  const dir = resolve('runs', `bench-federation-${Date.now()}`);
  const nats = await startLocalNats();
  const files = writeFederationFiles({
    dir, federation: 'bench', natsUrl: nats.url, dataPath: data, envoys: ['a', 'b', 'c'],
    partition: { scheme: 'iid', alpha: 1, seed: 1 },
    experiment: { name: 'overhead', rounds, min_envoys_to_start: 3, model: { width }, training: { batch_size: 32, local_epochs: 1 } },
  });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const director = spawnRole('director', ['director', 'start', '--config', files.director], join(dir, 'logs', 'director.log'));
  const envoys = files.envoys.map((f, i) => spawnRole(`envoy${i}`, ['envoy', 'start', '--config', f], join(dir, 'logs', `envoy${i}.log`)));
  try {
    await waitForOutput(director, /federation 'bench'/);
    await Promise.all(envoys.map((e) => waitForOutput(e, /registered with the director/)));
    const nc = await connectNats(nats.url, 'bench');
    const events: ExperimentEvent[] = [];
    await runExperimentRemotely(nc, 'bench', loadConfigFile(files.experiment, ExperimentSchema), { onEvent: (e) => events.push(e) });
    await nc.close();
    return events.filter((e) => e.type === 'round').map((e) => {
      const slowest = Math.max(...e.envoys!.map((x) => x.train_seconds ?? 0));
      return { round: e.round! + 1, round_seconds: e.seconds!, slowest_training_seconds: slowest, ratio: e.seconds! / slowest };
    });
  } finally {
    await Promise.all([director, ...envoys].map((p) => p.stop()));
    await nats.stop();
  }
}

const steps = Number(args.steps);
const tfjs = await tfjsThroughput(steps);
const torch = torchThroughput(steps);
const rounds = await roundOverhead(Number(args.rounds));
const last = rounds[rounds.length - 1];
const result = {
  date: new Date().toISOString(),
  command: `npm run bench:federation -- --steps ${steps} --rounds ${args.rounds} --width ${width}`,
  backend: backendName,
  model: `ConvNetBN width ${width}, 28x28x1, batch ${batch}, Adam`,
  tfjs_images_per_second: tfjs,
  torch: torch,
  tfjs_vs_torch_train_ratio: 'images_per_second' in torch ? tfjs / torch.images_per_second : null,
  rounds,
  round_overhead_ratio: last.ratio,
};
mkdirSync(join(BENCH, 'results'), { recursive: true });
writeFileSync(join(BENCH, 'results', 'federation.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
