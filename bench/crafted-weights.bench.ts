/**
 * The crafted-weights check (ts/envoy/director-checks/crafted-weights.ts), measured: how often it would refuse
 * an honest model across whole training runs (false refusals), and how often it refuses models whose weights
 * were crafted to single images out of a batch (detection). Writes bench/results/crafted-weights.json.
 *
 * Honest runs: the demo's protected experiment (convnet_gap w16, and the same with convnet_bn, with PRECODE, shard statistics, Adam, cosine
 * schedule, augmentation) trained in this process as FedAvg over the demo's three Dirichlet shards, with the
 * envoys' own training code (trainLocal); each round, each envoy's check runs on its first batch before it
 * trains, as the envoy does. Traps: each honest global model (every round) edited by a cheating director
 * within one round's bound (`max_update_norm`), then checked on every envoy's batch.
 *
 *   npx tsx bench/crafted-weights.bench.ts [--rounds 10] [--seeds 1,2] [--architectures convnet_gap,convnet_bn] [--width 16] [--train-limit N]
 *   npx tsx bench/crafted-weights.bench.ts --rescore   (the recorded checks' rates at today's MAX_DOMINANCE, no training)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ExperimentSchema, learningRateAt, type ExperimentConfig } from '../ts/core/config/experiment.ts';
import { findPneumoniaMnist } from '../ts/core/data/fetch.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { subset, type ImageDataset } from '../ts/core/data/dataset.ts';
import { takeShard } from '../ts/core/data/partition.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';
import { readWeights, slicesOf, writeWeights, type FlatWeights } from '../ts/core/weights.ts';
import { DEMO_ENVOYS, DEMO_PARTITION, demoExperiment } from '../ts/demo/experiment.ts';
import { CHECK_BATCH, gradientDominance, MAX_DOMINANCE } from '../ts/envoy/director-checks/crafted-weights.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, seeds: { type: 'string', default: '1,2' }, 'train-limit': { type: 'string' }, architectures: { type: 'string', default: 'convnet_gap,convnet_bn' }, width: { type: 'string', default: '16' }, rescore: { type: 'boolean', default: false } } });

/**
 * Edits a cheating director can make to the global model, each aimed at making one image of a batch dominate
 * a dense layer's gradient (so linear-layer leakage reads it back), each scaled to stay within one round's bound.
 */
const TRAPS: Record<string, (w: FlatWeights, bound: number) => FlatWeights> = {
  // The last batch norm turned into a gate (gamma scaled down, beta at -t of it): its ReLU lets through only
  // activations t standard deviations above the batch's mean, so the features the dense layers see are zero
  // for all but the image(s) holding them (a sparse-activation trap, in the spirit of trap weights).
  sparse_gate_5: (w, bound) => edit(w, /bn\d+\/beta$/, 'last', (beta, gamma) => beta.map((_, i) => -5 * 0.3 * Math.abs(gamma![i])), bound, 0.3),
  sparse_gate_4: (w, bound) => edit(w, /bn\d+\/beta$/, 'last', (beta, gamma) => beta.map((_, i) => -4 * 0.3 * Math.abs(gamma![i])), bound, 0.3),
  // The classifier scaled up: confident on most images, so only the few it gets wrong carry a gradient.
  saturated_classifier: (w, bound) => edit(w, /^classifier\/kernel$/, 'all', (k) => k.map((v) => v * 20), bound),
  // Boenisch et al.'s trap weights in spirit: half the first layer's kernels the negatives of the other half, scaled up.
  mirrored_first_layer: (w, bound) => edit(w, /^conv0\/kernel$/, 'all', (k) => { const out = Float32Array.from(k); const half = k.length >> 1; for (let j = 0; j < half; j++) { out[j] = 8 * k[j]; out[half + j] = -out[j]; } return out; }, bound),
  // PRECODE's encoder biases staggered, so its code's units switch on at different feature levels (binning).
  precode_binning: (w, bound) => edit(w, /^precode\/encoder\/bias$/, 'all', (b) => b.map((v, i) => v - 2 * (i % 8)), bound),
};

/** `w` with the tensors matching `name` (the last one, or all) replaced by `change` (given the matching gamma for a beta), the edit scaled down to `bound` if needed. */
function edit(w: FlatWeights, name: RegExp, which: 'last' | 'all', change: (v: Float32Array, gamma?: Float32Array) => Float32Array, bound: number, gammaScale?: number): FlatWeights {
  const slices = slicesOf(w);
  const matching = slices.filter((s) => name.test(s.name));
  const targets = which === 'last' ? matching.slice(-1) : matching;
  const edited = Float32Array.from(w.values);
  let offset = 0;
  const offsets = new Map(slices.map((s) => { const o = offset; offset += s.values.length; return [s.name, o]; }));
  for (const t of targets) {
    const gamma = slices.find((s) => s.name === t.name.replace(/beta$/, 'gamma'))?.values;
    edited.set(change(t.values, gamma), offsets.get(t.name)!);
    // A gate also scales its gamma (a smaller edit for the same threshold in standard deviations).
    if (gammaScale !== undefined && gamma) edited.set(gamma.map((g) => g * gammaScale), offsets.get(t.name.replace(/beta$/, 'gamma'))!);
  }
  let norm = 0;
  for (let i = 0; i < edited.length; i++) norm += (edited[i] - w.values[i]) ** 2;
  norm = Math.sqrt(norm);
  const scale = norm > bound ? bound / norm : 1;
  return { manifest: w.manifest, values: w.values.map((v, i) => v + (edited[i] - v) * scale) };
}

function changeNorm(a: FlatWeights, b: FlatWeights): number {
  let s = 0;
  for (let i = 0; i < a.values.length; i++) s += (a.values[i] - b.values[i]) ** 2;
  return Math.sqrt(s);
}

const RESULTS_FILE = join(HERE, 'results', 'crafted-weights.json');

interface Check { architecture: string; seed: number; round: number; envoy: string; dominance: number; layer: string }
type TrapCheck = Check & { change_norm: number };

/** Refusals and detections at the check's limit (MAX_DOMINANCE), with every check kept. */
function rates(honest: Check[], traps: Record<string, TrapCheck[]>) {
  const refused = (c: Check) => c.dominance > MAX_DOMINANCE;
  return {
    limit: MAX_DOMINANCE,
    honest: {
      checks: honest.length, refusals: honest.filter(refused).length, false_refusal_rate: honest.filter(refused).length / honest.length,
      max_dominance: Math.max(...honest.map((h) => h.dominance)), per_check: honest,
    },
    traps: Object.entries(traps).map(([trap, checks]) => ({
      trap, checks: checks.length, detected: checks.filter(refused).length, detection_rate: checks.filter(refused).length / checks.length,
      min_dominance: Math.min(...checks.map((c) => c.dominance)), max_change_norm: Math.max(...checks.map((c) => c.change_norm)), per_check: checks,
    })),
  };
}

// JSON has no Infinity: a dominance where every other image's gradient is zero is written as "Infinity".
const finite = (_key: string, v: unknown) => (v === Infinity ? 'Infinity' : v);
const infinite = (_key: string, v: unknown) => (v === 'Infinity' ? Infinity : v);

function write(summary: Record<string, unknown> & ReturnType<typeof rates>) {
  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(RESULTS_FILE, JSON.stringify(summary, finite, 2) + '\n');
  console.log(JSON.stringify({ ...summary, honest: { ...summary.honest, per_check: undefined }, traps: summary.traps.map((t) => ({ ...t, per_check: undefined })) }, null, 2));
}

if (args.rescore) {
  // The dominances do not depend on the limit: the run's checks, counted again at today's limit.
  const recorded = JSON.parse(readFileSync(RESULTS_FILE, 'utf8'), infinite);
  const traps = Object.fromEntries((recorded.traps as { trap: string; per_check: TrapCheck[] }[]).map((t) => [t.trap, t.per_check]));
  write({ ...recorded, ...rates(recorded.honest.per_check, traps), rescored: { date: new Date().toISOString(), command: 'npx tsx bench/crafted-weights.bench.ts --rescore' } });
  process.exit(0);
}

const dataPath = findPneumoniaMnist(undefined, 'pass the data');
const full = loadPneumoniaMnist(dataPath, 'train');
const train = args['train-limit'] ? subset(full, [...Array(Number(args['train-limit'])).keys()]) : full;
const shards = DEMO_ENVOYS.map((_, index) => takeShard(train, { ...DEMO_PARTITION, num_shards: DEMO_ENVOYS.length, index }));
const rounds = Number(args.rounds);

const honest: Check[] = [];
const traps: Record<string, TrapCheck[]> = Object.fromEntries(Object.keys(TRAPS).map((t) => [t, []]));
const started = performance.now();
const load = loadavg();

function firstBatch(shard: ImageDataset, size: number): ImageDataset {
  return subset(shard, [...Array(Math.min(size, shard.labels.length)).keys()]);
}

function worst(model: ReturnType<typeof buildModel>, batch: ImageDataset, config: ExperimentConfig) {
  const beta = config.model.precode.enabled ? config.model.precode.beta : 0;
  return gradientDominance(model, batch, beta).reduce((a, b) => (b.dominance > a.dominance ? b : a));
}

const runs = args.architectures!.split(',').flatMap((architecture) => args.seeds!.split(',').map((seed) => ({ architecture, seed: Number(seed) })));
for (const { architecture, seed } of runs) {
  const demo = demoExperiment({ rounds, width: Number(args.width), epochs: 1, secagg: true, defenses: true });
  const config = ExperimentSchema.parse({ ...demo, model: { ...(demo.model as object), architecture, seed } });
  const model = buildModel(config.model);
  let global = readWeights(model);
  for (let round = 0; round < rounds; round++) {
    const deltas: { delta: FlatWeights; examples: number }[] = [];
    for (const [k, envoy] of DEMO_ENVOYS.entries()) {
      const batch = firstBatch(shards[k], CHECK_BATCH);
      writeWeights(model, global);
      const w = worst(model, batch, config);
      honest.push({ architecture, seed, round: round + 1, envoy, dominance: w.dominance, layer: w.layer });
      for (const [name, trap] of Object.entries(TRAPS)) {
        const crafted = trap(global, config.aggregation.max_update_norm);
        writeWeights(model, crafted);
        const t = worst(model, batch, config);
        traps[name].push({ architecture, seed, round: round + 1, envoy, dominance: t.dominance, layer: t.layer, change_norm: changeNorm(crafted, global) });
      }
      writeWeights(model, global);
      const training = { ...config.training, learning_rate: learningRateAt(config, round) };
      const r = await trainLocal(model, shards[k], { config: training, seedSalt: round * 1009 + k });
      const after = readWeights(model);
      deltas.push({ delta: { manifest: after.manifest, values: after.values.map((v, i) => v - global.values[i]) }, examples: r.examples });
    }
    const total = deltas.reduce((n, d) => n + d.examples, 0);
    global = { manifest: global.manifest, values: global.values.map((v, i) => v + deltas.reduce((s, d) => s + (d.examples / total) * d.delta.values[i], 0)) };
    const maxHonest = Math.max(...honest.filter((h) => h.architecture === architecture && h.seed === seed && h.round === round + 1).map((h) => h.dominance));
    console.log(`${architecture} seed ${seed} round ${round + 1}: honest max dominance ${maxHonest.toFixed(3)}; traps (least dominated) ${Object.entries(traps).map(([n, ts]) => `${n} ${Math.min(...ts.filter((t) => t.architecture === architecture && t.seed === seed && t.round === round + 1).map((t) => t.dominance)).toFixed(2)}`).join(', ')}`);
  }
  model.dispose();
}

write({
  command: `npx tsx bench/crafted-weights.bench.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
  date: new Date().toISOString(), machine: { cores: cpus().length, loadavg_start: load, loadavg_end: loadavg() }, seconds: (performance.now() - started) / 1000,
  ...rates(honest, traps),
});
