/**
 * Federation bench (not a test): writes bench/results/federation.json.
 *  1. Envoy training throughput, ConvNetBN width 32 at 28x28, batch 64, Adam: tfjs (the envoy's own
 *     training loop) beside PyTorch CPU on the same images, run one after the other by this script.
 *  2. Protocol overhead: wall time of one federated round with 3 envoy processes ÷ the slowest envoy's
 *     local training time in that round.
 *  3. The cost of the trust boundary: the same federation secured (mutual TLS, nkeys, permissions, signed
 *     and sealed messages, encrypted blobs) and --insecure, run alternately in this script; the ratio of
 *     their median round times is `secure_vs_insecure_round_ratio`.
 * usage: npm run bench:federation [-- --steps 40 --rounds 2 --pairs 2 --python /path/to/python-with-torch]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ExperimentEvent } from '../ts/core/messages.ts';
import { backendName } from '../ts/core/tf.ts';
import { runLocalFederation } from '../ts/local/federation.ts';
import { benchPython } from './measuring-sticks.ts';
import { trainingThroughput } from './training-throughput.ts';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    rounds: { type: 'string', default: '2' },
    pairs: { type: 'string', default: '2' },
    width: { type: 'string', default: '32' },
    python: { type: 'string' }, // default: benchPython() (scripts/bench-env.sh's venv, made on first use)
    data: { type: 'string', default: '../shared/data/pneumoniamnist.npz' },
  },
});
/** The measuring sticks' Python: --python, else the bench venv (set up on first use). */
const python = (() => { let cached: string | undefined; return () => (cached ??= args.python ?? benchPython()); })();
const BENCH = resolve('bench');
const data = resolve(args.data!);
const width = Number(args.width);
const batch = 64;

function torchThroughput(steps: number): { images_per_second: number; torch: string } | { error: string } {
  const r = spawnSync(python(), [join(BENCH, 'torch_train.py'), data, String(width), String(batch), String(steps), '2'], { encoding: 'utf8' });
  if (r.status !== 0) return { error: `PyTorch run failed (${python()}): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

interface RoundTime { round: number; round_seconds: number; slowest_training_seconds: number; ratio: number }

/** One local federation (3 envoy processes), secured or --insecure; its round times. */
async function federationRounds(rounds: number, insecure: boolean): Promise<RoundTime[]> {
  const dir = resolve('runs', `bench-federation-${insecure ? 'insecure' : 'secure'}-${Date.now()}`);
  const events: ExperimentEvent[] = [];
  try {
    const { final } = await runLocalFederation({
      dir, federation: 'bench', dataPath: data, envoys: ['a', 'b', 'c'], insecure,
      partition: { scheme: 'iid', alpha: 1, seed: 1 },
      // The recorded setting: plain FedAvg rounds (the cost measured is the bus's, not secure aggregation's).
      experiment: {
        name: 'overhead', rounds, min_envoys_to_start: 3, model: { width, precode: { enabled: false } },
        training: { batch_size: 32, local_epochs: 1, batch_norm_statistics: 'batch' }, secagg: { enabled: false },
      },
      privacy: { preset: 'open' },
      onEvent: (e) => events.push(e),
    });
    if (final.type !== 'finished') throw new Error(`the ${insecure ? 'insecure' : 'secure'} federation failed: ${final.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return events.filter((e) => e.type === 'round').map((e) => {
    const slowest = Math.max(...e.envoys!.map((x) => x.train_seconds ?? 0));
    return { round: e.round! + 1, round_seconds: e.seconds!, slowest_training_seconds: slowest, ratio: e.seconds! / slowest };
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Secure and insecure runs alternate (secure first, then insecure first), so drift on the machine hits both. */
async function trustBoundaryCost(rounds: number, pairs: number) {
  const secure: number[] = [];
  const insecure: number[] = [];
  let lastSecure: RoundTime[] = [];
  for (let p = 0; p < pairs; p++) {
    for (const mode of p % 2 === 0 ? [false, true] : [true, false]) {
      const times = await federationRounds(rounds, mode);
      (mode ? insecure : secure).push(...times.map((t) => t.round_seconds));
      if (!mode) lastSecure = times;
      console.error(`pair ${p + 1}: ${mode ? 'insecure' : 'secure'} rounds ${times.map((t) => t.round_seconds.toFixed(2)).join(', ')} s`);
    }
  }
  return { secure_round_seconds: secure, insecure_round_seconds: insecure, ratio: median(secure) / median(insecure), lastSecure };
}

const steps = Number(args.steps);
/**
 * Both sticks three times, alternately, and the median of each: one short run of either side swung by ±30 %
 * on this shared machine (PyTorch: 584, 497, 348 images/s in three runs of this bench).
 */
async function trainingComparison(repeats = 3) {
  const tfjsRuns: number[] = [];
  const torchRuns: number[] = [];
  let torchVersion: string | undefined;
  let torchError: string | undefined;
  for (let i = 0; i < repeats; i++) {
    tfjsRuns.push(await trainingThroughput({ data, width, batch, steps }));
    const t = torchThroughput(steps);
    if ('error' in t) { torchError = t.error; continue; }
    torchRuns.push(t.images_per_second);
    torchVersion = t.torch;
  }
  const torch: { images_per_second: number; runs: number[]; torch?: string; threads: number } | { error: string } = torchRuns.length
    ? { images_per_second: median(torchRuns), runs: torchRuns, torch: torchVersion, threads: 2 } : { error: torchError! };
  return { tfjs: median(tfjsRuns), tfjsRuns, torch };
}
const { tfjs, tfjsRuns, torch } = await trainingComparison();
const boundary = await trustBoundaryCost(Number(args.rounds), Number(args.pairs));
const rounds = boundary.lastSecure;
const last = rounds[rounds.length - 1];
const result = {
  date: new Date().toISOString(),
  command: `npm run bench:federation -- --steps ${steps} --rounds ${args.rounds} --pairs ${args.pairs} --width ${width}`,
  backend: backendName,
  model: `ConvNetBN width ${width}, 28x28x1, batch ${batch}, Adam`,
  tfjs_images_per_second: tfjs,
  tfjs_runs: tfjsRuns,
  torch: torch,
  tfjs_vs_torch_train_ratio: 'images_per_second' in torch ? tfjs / torch.images_per_second : null,
  rounds,
  round_overhead_ratio: last.ratio,
  secure_round_seconds: boundary.secure_round_seconds,
  insecure_round_seconds: boundary.insecure_round_seconds,
  secure_vs_insecure_round_ratio: boundary.ratio,
};
mkdirSync(join(BENCH, 'results'), { recursive: true });
writeFileSync(join(BENCH, 'results', 'federation.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result, null, 2));
