/**
 * A director that cheats, measured (bench, not a test): for each attack of the issue, whether the envoys'
 * checks detect it, where, and what the cheating director can reconstruct of a hospital's X-rays with the
 * checks and without them. Writes bench/results/malicious-director.json:
 *   attacks: {attack, detected, stage, rules, round, gap_db_with_checks, gap_db_without_checks, gap_db_without_checks_one_image}
 *
 * Detection: a provisioned federation of three envoys with the default privacy policy and the protected
 * experiment (PRECODE, shard statistics, secure aggregation) on the real server; the cheating director
 * (test/adversary/cheating-director.ts, with the real director's kit) runs each attack's round by hand.
 * `stage` is where the envoys stopped: `task` (refused the task), `model` (refused the model before
 * advertising a key), `keys` (refused before sharing keys). With the checks no envoy sends anything derived
 * from its images, so the director's best reconstruction is the no-information guess: gap 0 dB.
 *
 * Without the checks: what the director would obtain from hospital-a had its envoy trained anyway, scored by the
 * lab. The director asks for the most revealing update the default policy still allows (its fewest images, 64,
 * in one SGD step) and receives, as each attack arranges, hospital-a's own update (model inconsistency with
 * gradient suppression, sybils, per-envoy kernels: the sum is it, or keeps it apart), its update on a gated
 * model tuned to hospital-a's images (trap weights within one round's bound; a crafted initial model or an
 * out-of-bound jump may go further), or an imprint layer's gradients. The analytic attack and Inverting
 * Gradients run on the update (lab: ts/leakage/); the worst image's PSNR gap above the floor is reported, and
 * the same for a one-image update (what an envoy whose policy is open would send).
 *
 *   npx tsx bench/malicious-director.bench.ts [--width 32] [--ig-iterations 100] [--analytic-iterations 1000] [--only sybils,...]
 *
 * `--only` re-runs some attacks and keeps the other rows of the existing file (each row carries its own date).
 *
 * Width 32 by default: the lab's reference model, where feature inversion finds one image's pixels from its
 * features every time (at width 16 it sometimes stalls, at 8 mostly: the attack would look weaker than it is).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ExperimentSchema, type ExperimentConfig } from '../ts/core/config/experiment.ts';
import { subset, type ImageDataset } from '../ts/core/data/dataset.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import type { FlatWeights } from '../ts/core/weights.ts';
import { CHECK_BATCH } from '../ts/envoy/director-checks/crafted-weights.ts';
import { loadShard } from '../ts/envoy/shard.ts';
import { loadEnvoyConfig } from '../ts/envoy/start.ts';
import { imprintGradients, imprintLayerFor, recoverImprinted } from '../ts/leakage/attacks/imprint.ts';
import { meanImage } from '../ts/leakage/metrics.ts';
import { runLeakage } from '../ts/leakage/run.ts';
import { chanceGap, scoreBatch, split } from '../ts/leakage/score.ts';
import { cheatingRound, type CheatPlan, type EnvoyOutcome } from '../test/adversary/cheating-director.ts';
import { calibratedGate, initialWeights, jumped, mirroredFirstLayer, perEnvoyKernels, suppressed } from '../test/adversary/crafted-models.ts';
import { startTestFederation } from '../test/helpers/federation.ts';
import { PNEUMONIAMNIST } from '../test/helpers/paths.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { width: { type: 'string', default: '32' }, 'ig-iterations': { type: 'string', default: '100' }, 'analytic-iterations': { type: 'string', default: '1000' }, only: { type: 'string' } } });
const ENVOYS = ['a', 'b', 'c'];
const TARGET = 'a';
/** The default policy's fewest images per update, all in one plain SGD step: the most revealing update it allows. */
const MINIMAL = 64;
const MODEL_RULES = ['honest_director.initial_model', 'honest_director.trajectory', 'honest_director.crafted_weights'];

type View =
  | { kind: 'update'; weights: FlatWeights }
  | { kind: 'imprint' };

interface Attack {
  name: string;
  /** The round the cheat runs in (0: the first, where envoys build the initial model themselves). */
  round: number;
  plan(config: ExperimentConfig, honest: FlatWeights, targetBatch: ImageDataset): Omit<CheatPlan, 'experiment' | 'round'>;
  /** What the director would receive of hospital-a without the checks. */
  view(config: ExperimentConfig, honest: FlatWeights, targetBatch: ImageDataset): View;
}

const ALL_ATTACKS: Attack[] = [
  {
    name: 'model_inconsistency', round: 1,
    plan: (_c, honest) => { const zero = suppressed(honest); return { envoys: ENVOYS, weightsFor: (e) => (e === TARGET ? honest : zero) }; },
    view: (_c, honest) => ({ kind: 'update', weights: honest }),
  },
  {
    name: 'per_envoy_kernels', round: 1,
    plan: (_c, honest) => { const kernels = perEnvoyKernels(honest, ENVOYS); return { envoys: ENVOYS, weightsFor: (e) => kernels.get(e)! }; },
    view: (_c, honest) => ({ kind: 'update', weights: perEnvoyKernels(honest, ENVOYS).get(TARGET)! }),
  },
  {
    name: 'trap_weights', round: 1,
    plan: (c, honest, batch) => { const trap = gateOrHonest(c, honest, batch); return { envoys: ENVOYS, weightsFor: () => trap }; },
    view: (c, honest, batch) => ({ kind: 'update', weights: gateOrHonest(c, honest, batch) }),
  },
  {
    name: 'imprint_layer', round: 0,
    plan: (_c, honest) => ({ envoys: ENVOYS, weightsFor: () => honest, tamper: (task) => { (task.model as { architecture: string }).architecture = 'convnet_bn_imprint'; } }),
    view: () => ({ kind: 'imprint' }),
  },
  {
    name: 'sybils', round: 0,
    plan: (_c, honest) => ({ envoys: [TARGET], sybils: ['ghost-1', 'ghost-2'], weightsFor: () => honest }),
    view: (_c, honest) => ({ kind: 'update', weights: honest }),
  },
  {
    name: 'crafted_initial_model', round: 0,
    plan: (_c, honest) => { const trap = mirroredFirstLayer(honest); return { envoys: ENVOYS, weightsFor: () => trap }; },
    // Round 1 has no trajectory to keep: without the check, any model, so the best gate however far.
    view: (c, honest, batch) => ({ kind: 'update', weights: gateOrHonest(c, honest, batch, Infinity) }),
  },
  {
    name: 'out_of_bound_jump', round: 1,
    plan: (c, honest) => { const far = jumped(honest, c.aggregation.max_update_norm); return { envoys: ENVOYS, weightsFor: () => far }; },
    view: (c, honest, batch) => ({ kind: 'update', weights: gateOrHonest(c, honest, batch, Infinity) }),
  },
];

const ATTACKS = args.only ? ALL_ATTACKS.filter((a) => args.only!.split(',').includes(a.name)) : ALL_ATTACKS;
if (ATTACKS.length === 0) throw new Error(`--only names no attack; attacks: ${ALL_ATTACKS.map((a) => a.name).join(', ')}`);

function gateOrHonest(c: ExperimentConfig, honest: FlatWeights, batch: ImageDataset, bound?: number): FlatWeights {
  return calibratedGate(c, honest, batch, bound) ?? honest;
}

function stageOf(o: EnvoyOutcome): string {
  if (o.stages.includes('masked_input')) return 'none (sent a masked update)';
  if (o.stages.includes('share_keys')) return 'none (shared keys)';
  if (o.stages.includes('advertise')) return 'keys';
  return o.rule && MODEL_RULES.includes(o.rule) ? 'model' : 'task';
}

const started = performance.now();
const load = loadavg();
const width = Number(args.width);
const model = { width, seed: 1 };
const training = { batch_size: 32, local_epochs: 1 };
const fed = await startTestFederation({
  envoys: ENVOYS, protectedDefaults: true, privacy: {}, trainLimit: 1500, heartbeat: { interval_seconds: 1, timeout_seconds: 60 },
  experiment: { name: 'warmup', rounds: 1, model, training },
});
const RESULTS_FILE = join(HERE, 'results', 'malicious-director.json');
const rerun = new Set(ATTACKS.map((a) => a.name));
const kept: Record<string, unknown>[] = args.only && existsSync(RESULTS_FILE)
  ? (JSON.parse(readFileSync(RESULTS_FILE, 'utf8')).attacks as Record<string, unknown>[]).filter((r) => !rerun.has(r.attack as string))
  : [];
const rows: Record<string, unknown>[] = [];
const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train');
const targetShard = loadShard(TARGET, loadEnvoyConfig(fed.files.envoys.find((f) => f.endsWith(`envoy-${TARGET}.yaml`))!).shard).train;
const checkBatch = subset(targetShard, [...Array(CHECK_BATCH).keys()]);
const minimal = subset(targetShard, [...Array(MINIMAL).keys()]);
const floor = meanImage(train.images, 784);
const configOf = (attack: Attack) => ExperimentSchema.parse({ ...fed.config, name: `cheat-${attack.name.replace(/_/g, '-')}`, model, training });
// First every attack against the live envoys (quick), then the lab, with the federation stopped: an attack's
// minutes of computation must not leave the cheating director's connection unanswered.
const detections = new Map<string, Map<string, EnvoyOutcome>>();
try {
  const director = await fed.connectAs('director');
  for (const attack of ATTACKS) {
    const config = configOf(attack);
    const outcomes = await cheatingRound(director, { experiment: config, round: attack.round, ...attack.plan(config, initialWeights(config), checkBatch) });
    detections.set(attack.name, outcomes);
    console.log(`${attack.name}: ${[...outcomes].map(([e, o]) => `${e} ${o.rule ?? 'none'} after [${o.stages.join(', ')}]`).join('; ')}`);
  }
  await director.close();
} finally {
  await fed.stop();
}
for (const attack of ATTACKS) {
  const config = configOf(attack);
  const honest = initialWeights(config);
  const outcomes = detections.get(attack.name)!;
  const target = outcomes.get(TARGET)!;
  const sent = [...outcomes.values()].some((o) => o.stages.includes('masked_input') || o.stages.includes('share_keys'));
  const view = attack.view(config, honest, checkBatch);
  const without = await leakage(config, view, minimal, train.images, floor);
  const oneImage = view.kind === 'update' ? await leakage(config, view, subset(targetShard, [0]), train.images, floor) : without;
  const row = {
    attack: attack.name, detected: !sent && !!target.rule, stage: stageOf(target), rules: Object.fromEntries([...outcomes].map(([e, o]) => [e, o.rule ?? 'none'])),
    round: attack.round + 1, gap_db_with_checks: sent ? null : 0, gap_db_without_checks: without.gap, attack_without_checks: without.attack,
    gap_db_without_checks_one_image: oneImage.gap, date: new Date().toISOString(),
  };
  rows.push(row);
  console.log(`${attack.name}: detected ${row.detected} at ${row.stage} (${target.rule}); without the checks ${without.gap.toFixed(1)} dB (${without.attack}), one image ${oneImage.gap.toFixed(1)} dB`);
  write();
}

/** The worst image's PSNR gap above the floor over the lab's attacks on what the director would receive. */
async function leakage(config: ExperimentConfig, view: View, batch: ImageDataset, floorImages: Float32Array, floor: Float32Array): Promise<{ gap: number; attack: string }> {
  const n = batch.labels.length;
  if (view.kind === 'imprint') {
    // Every image's loss gradient alike (the layer after weighs rows alike; any non-zero δ gives the same images back).
    const recovered = recoverImprinted(imprintGradients(imprintLayerFor(floorImages, 784, 256), batch.images, 784, new Array(n).fill(1)), 784);
    const truths = split(batch.images, 784);
    const scores = scoreBatch(truths, recovered, floor, [28, 28, 1]).filter(Boolean);
    return { gap: Math.max(...scores.map((s) => s.psnrGap)) - chanceGap(truths, floor, floorImages), attack: 'imprint' };
  }
  const base = {
    model: config.model, bnMode: 'train' as const, images: batch.images, labels: batch.labels, batch: n, floorImages, weights: view.weights,
    restarts: 1, learningRate: 0.1, seed: 0, localSteps: 1, localLearningRate: 0.001,
    // Statistics set over the shard say nothing about the batch: the attacker ignores them (as in the audit).
    bnStatisticsWeight: 0,
  };
  const results = [
    // As the audit runs it: four restarts where one image's features are inverted.
    { attack: 'analytic', r: await runLeakage({ ...base, attack: 'analytic', iterations: Number(args['analytic-iterations']), restarts: 4, tvWeight: 0 }) },
    { attack: 'ig', r: await runLeakage({ ...base, attack: 'ig', iterations: Number(args['ig-iterations']), tvWeight: 1e-4 }) },
  ];
  // The worst image's gap over what chance alone scores on a batch this size (score.ts chanceGap).
  const worst = results.map(({ attack, r }) => ({ attack, gap: Math.max(...r.images.map((s) => s.psnrGap)) - r.chance_gap_db })).reduce((a, b) => (b.gap > a.gap ? b : a));
  return worst;
}

function write() {
  mkdirSync(join(HERE, 'results'), { recursive: true });
  const order = (r: Record<string, unknown>) => ALL_ATTACKS.findIndex((a) => a.name === r.attack);
  writeFileSync(RESULTS_FILE, JSON.stringify({
    command: `npx tsx bench/malicious-director.bench.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
    date: new Date().toISOString(), machine: { cores: cpus().length, loadavg_start: load, loadavg_end: loadavg() }, seconds: (performance.now() - started) / 1000,
    target: `hospital ${TARGET}, its first ${MINIMAL} training images in one SGD step (one image for the one-image column)`, width,
    attacks: [...kept, ...rows].sort((a, b) => order(a) - order(b)),
  }, null, 2) + '\n');
}
