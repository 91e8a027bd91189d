/**
 * Clinical utility bench (not a test): how well the pneumonia detector does, trained centrally, by the
 * federation undefended, and by the federation as shipped (`npm run federation`: secure aggregation, PRECODE
 * with shard statistics, the hospitals' default policy), on hospitals that differ (the demo's Dirichlet(1)
 * label skew), on IID hospitals and on more skewed ones (Dirichlet(0.5)), and under DP-SGD at epsilon 1, 3, 8
 * (delta 1e-5). Every row: test ROC-AUC, and accuracy, sensitivity and specificity at the threshold chosen on
 * the validation data (core/operating-points.ts) and at 0.5; rounds and wall time. Writes
 * bench/results/clinical.json.
 *
 *   npx tsx bench/clinical.bench.ts [--rounds 10] [--width 16] [--only centralized,protected,...] [--keep]
 *
 * Rows: centralized, undefended, protected, protected_iid, protected_noniid, dp_eps1, dp_eps3, dp_eps8.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ExperimentSchema, learningRateAt } from '../ts/core/config/experiment.ts';
import { size } from '../ts/core/data/dataset.ts';
import { findPneumoniaMnist } from '../ts/core/data/fetch.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { takeShard } from '../ts/core/data/partition.ts';
import type { ClassificationMetrics } from '../ts/core/metrics.ts';
import { buildModel } from '../ts/core/model.ts';
import { chooseThreshold, operatingPoints } from '../ts/core/operating-points.ts';
import { computeRdp, DEFAULT_ORDERS, epsilonFromRdp } from '../ts/core/privacy/rdp-accountant.ts';
import { evaluate, localStepCount, predictPositive, trainLocal } from '../ts/core/training.ts';
import { DEMO_ENVOYS, DEMO_PARTITION, DP_RECIPE, demoExperiment } from '../ts/demo/experiment.ts';
import { runLocalFederation } from '../ts/local/federation.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    width: { type: 'string', default: '16' },
    only: { type: 'string' },
    data: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const rounds = Number(args.rounds);
const width = Number(args.width);
const dataPath = findPneumoniaMnist(args.data, 'pass --data');
const DELTA = 1e-5;

/** MedMNIST v2 (Yang et al. 2023), PneumoniaMNIST test split, 28x28 unless said: AUC / accuracy. */
const ANCHORS = [
  { model: 'ResNet-18 (28)', auc: 0.944, acc: 0.854 }, { model: 'ResNet-50 (224)', auc: 0.962, acc: 0.884 },
  { model: 'Google AutoML Vision', auc: 0.991, acc: 0.946 },
];

interface Row {
  row: string; setting: string; partition: string; test_auc: number | null;
  threshold: number | null; accuracy: number; sensitivity: number; specificity: number;
  accuracy_at_05: number; sensitivity_at_05: number; specificity_at_05: number;
  epsilon?: number; noise_multiplier?: number; rounds: number; seconds: number;
  /** The invocation that produced this row (rows of earlier invocations are kept). */
  command: string;
}

const COMMAND = `npx tsx bench/clinical.bench.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;

function row(name: string, setting: string, partition: string, at05: ClassificationMetrics, atChosen: ClassificationMetrics | undefined, threshold: number | undefined, seconds: number, extra: Partial<Row> = {}): Row {
  const chosen = atChosen ?? at05;
  return {
    row: name, setting, partition, test_auc: at05.roc_auc, threshold: threshold ?? null,
    accuracy: chosen.accuracy, sensitivity: chosen.sensitivity, specificity: chosen.specificity,
    accuracy_at_05: at05.accuracy, sensitivity_at_05: at05.sensitivity, specificity_at_05: at05.specificity,
    rounds, seconds, command: COMMAND, ...extra,
  };
}

/** The same model and training as the demo, on the whole training split, one epoch per round. */
async function centralized(): Promise<Row> {
  const started = performance.now();
  const config = ExperimentSchema.parse({ ...demoExperiment({ rounds, width, epochs: 1, secagg: false, defenses: false }), name: 'centralized' });
  const [train, val, test] = (['train', 'val', 'test'] as const).map((s) => loadPneumoniaMnist(dataPath, s));
  const model = buildModel(config.model);
  for (let r = 0; r < rounds; r++) {
    await trainLocal(model, train, { config: { ...config.training, learning_rate: learningRateAt(config, r) }, seedSalt: r });
    process.stdout.write(`  centralized epoch ${r + 1}/${rounds}\r`);
  }
  const chosen = chooseThreshold([operatingPoints(predictPositive(model, val), val.labels)]);
  return row('centralized', 'one site, all training images, no defenses', 'all', evaluate(model, test), chosen && evaluate(model, test, chosen.threshold),
    chosen?.threshold, (performance.now() - started) / 1000);
}

/** DP-SGD's epsilon after the run for the hospital with the smallest shard (the largest sampling rate). */
function epsilonOf(noiseMultiplier: number, partition: typeof DEMO_PARTITION): number {
  const train = loadPneumoniaMnist(dataPath, 'train');
  const smallest = Math.min(...DEMO_ENVOYS.map((_, index) => size(takeShard(train, { ...partition, num_shards: DEMO_ENVOYS.length, index }))));
  const batch = DP_RECIPE.batch_size;
  const steps = rounds * localStepCount(smallest, { local_epochs: 1, batch_size: batch });
  return epsilonFromRdp(DEFAULT_ORDERS, computeRdp(Math.min(1, batch / smallest), noiseMultiplier, steps, DEFAULT_ORDERS), DELTA).epsilon;
}

/** The noise multiplier that spends `target` epsilon over the run (bisection: epsilon falls as sigma grows). */
function noiseFor(target: number, partition: typeof DEMO_PARTITION): number {
  let low = 0.3, high = 20;
  for (let i = 0; i < 40; i++) {
    const mid = (low + high) / 2;
    if (epsilonOf(mid, partition) > target) low = mid; else high = mid;
  }
  return high;
}

async function federation(name: string, setting: string, o: { secagg: boolean; defenses: boolean; partition: typeof DEMO_PARTITION; dpEpsilon?: number }): Promise<Row> {
  const started = performance.now();
  const dir = resolve('runs', `bench-clinical-${name}-${Date.now()}`);
  const sigma = o.dpEpsilon ? noiseFor(o.dpEpsilon, o.partition) : undefined;
  try {
    const { final } = await runLocalFederation({
      dir, federation: 'clinical', dataPath, envoys: DEMO_ENVOYS, partition: o.partition,
      experiment: demoExperiment({ rounds, width, epochs: 1, secagg: o.secagg, defenses: o.defenses, dpNoiseMultiplier: sigma }),
      ...(o.secagg && (o.defenses || sigma) ? {} : { privacy: { preset: 'open' } }),
      registrationTimeoutMs: 600_000, silenceTimeoutMs: 1_800_000,
      onEvent: (e) => { if (e.type === 'round') process.stdout.write(`  ${name} round ${e.round! + 1}/${rounds}\r`); },
    });
    if (final.type !== 'finished' || !final.test) throw new Error(`${name}: the experiment did not finish: ${final.message ?? final.type}`);
    const partition = o.partition.scheme === 'iid' ? 'iid' : `dirichlet ${o.partition.alpha}`;
    return row(name, setting, partition, final.test, final.test_at_threshold, final.threshold?.threshold, (performance.now() - started) / 1000,
      sigma ? { noise_multiplier: sigma, epsilon: epsilonOf(sigma, o.partition) } : {});
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

const IID = { scheme: 'iid', alpha: 1, seed: 7 } as const;
const SKEWED = { scheme: 'dirichlet', alpha: 0.5, seed: 7 } as const;
const ROWS: Record<string, () => Promise<Row>> = {
  centralized,
  undefended: () => federation('undefended', 'federation, no secure aggregation, no defenses', { secagg: false, defenses: false, partition: DEMO_PARTITION }),
  protected: () => federation('protected', 'federation as shipped (npm run federation)', { secagg: true, defenses: true, partition: DEMO_PARTITION }),
  protected_iid: () => federation('protected_iid', 'as shipped, IID hospitals', { secagg: true, defenses: true, partition: IID }),
  protected_noniid: () => federation('protected_noniid', 'as shipped, Dirichlet(0.5) label skew', { secagg: true, defenses: true, partition: SKEWED }),
  dp_eps1: () => federation('dp_eps1', 'secure aggregation + DP-SGD, epsilon 1', { secagg: true, defenses: false, partition: DEMO_PARTITION, dpEpsilon: 1 }),
  dp_eps3: () => federation('dp_eps3', 'secure aggregation + DP-SGD, epsilon 3', { secagg: true, defenses: false, partition: DEMO_PARTITION, dpEpsilon: 3 }),
  dp_eps8: () => federation('dp_eps8', 'secure aggregation + DP-SGD, epsilon 8', { secagg: true, defenses: false, partition: DEMO_PARTITION, dpEpsilon: 8 }),
};

const out = join(HERE, 'results', 'clinical.json');
const previous = (() => { try { return JSON.parse(readFileSync(out, 'utf8')).rows as Row[]; } catch { return []; } })();
const wanted = Object.keys(ROWS).filter((r) => !args.only || args.only.split(',').includes(r));
const rows = previous.filter((r) => !wanted.includes(r.row));
const load = loadavg();
const started = performance.now();
for (const name of wanted) {
  const r = await ROWS[name]();
  rows.push(r);
  console.log(`${name.padEnd(18)} AUC ${r.test_auc?.toFixed(4)}  acc ${r.accuracy.toFixed(4)} (threshold ${r.threshold ?? 0.5}; at 0.5 ${r.accuracy_at_05.toFixed(4)})  ` +
    `sens ${r.sensitivity.toFixed(3)} spec ${r.specificity.toFixed(3)}${r.epsilon ? `  epsilon ${r.epsilon.toFixed(2)} (sigma ${r.noise_multiplier!.toFixed(3)})` : ''}  ${r.seconds.toFixed(0)} s`);
  const get = (n: string) => rows.find((x) => x.row === n);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({
    command: COMMAND,
    date: new Date().toISOString(), machine: { cores: cpus().length, loadavg_start: load, loadavg_end: loadavg() },
    rounds, width, delta: DELTA, anchors: ANCHORS,
    protected_auc: get('protected')?.test_auc ?? null, protected_acc: get('protected')?.accuracy ?? null,
    dp_eps8_auc: get('dp_eps8')?.test_auc ?? null, noniid_auc: get('protected_noniid')?.test_auc ?? null,
    seconds: (performance.now() - started) / 1000, rows,
  }, null, 2) + '\n');
}
