/**
 * Robustness bench (not a test): what one hostile participant does to a 10-envoy federation, and what the
 * director's bounds and the robust strategies leave of it. Writes bench/results/robustness.json:
 *   rows: {strategy, secagg, sub_cohort_size, bounds, hostile, test_auc, refused_rounds, hostile_refusals, ...}
 *   strategy  fedavg (plain FedAvg: no bounds, no caps), fedavg_bounds (norm bound, cohort screen, weight cap
 *             0.2, provisioned example caps), median, trimmed_mean (robust, with the same bounds); secagg: the
 *             bounded FedAvg under secure aggregation, as one secure sum of all ten or as secure sums of
 *             sub-cohorts of three (sub_cohort_size 3), and the median of those sums
 *   hostile   none | sign_flip | scale100 | inflated_examples (registers and claims 1,000,000 examples)
 * The hostile envoy (test/adversary/hostile-envoy.ts) is a real provisioned envoy with a real shard that
 * tampers with its update every round.
 *
 *   npx tsx bench/robustness.bench.ts [--rounds 3] [--envoys 10] [--width 8] [--only fedavg,median,fedavg_bounds+secagg,median+secagg+sub3] [--hostile none,sign_flip] [--max-weight-fraction 0.2] [--keep]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPneumoniaMnist } from '../ts/core/data/fetch.ts';
import type { ExperimentEvent } from '../ts/core/messages.ts';
import { envoyNames } from '../ts/leakage/audit/sweep.ts';
import { runLocalFederation } from '../ts/local/federation.ts';
import { spawnScript } from '../ts/local/roles.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    envoys: { type: 'string', default: '10' },
    width: { type: 'string', default: '8' },
    only: { type: 'string' },
    hostile: { type: 'string' },
    data: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'max-weight-fraction': { type: 'string', default: '0.2' },
  },
});

type Hostile = 'none' | 'sign_flip' | 'scale100' | 'inflated_examples';
/** `subCohorts`: secure sums of sub-cohorts of at least this many envoys (secagg.sub_cohort_size), 0: one sum of all. */
interface Setting { strategy: 'fedavg' | 'fedavg_bounds' | 'median' | 'trimmed_mean'; secagg: boolean; bounds: boolean; subCohorts?: number }

const SETTINGS: Setting[] = [
  { strategy: 'fedavg', secagg: false, bounds: false },
  { strategy: 'fedavg_bounds', secagg: false, bounds: true },
  { strategy: 'median', secagg: false, bounds: true },
  { strategy: 'trimmed_mean', secagg: false, bounds: true },
  { strategy: 'fedavg_bounds', secagg: true, bounds: true },
  { strategy: 'fedavg_bounds', secagg: true, bounds: true, subCohorts: 3 },
  { strategy: 'median', secagg: true, bounds: true, subCohorts: 3 },
];
const HOSTILES: Hostile[] = ['none', 'sign_flip', 'scale100', 'inflated_examples'];
const MODE: Record<Exclude<Hostile, 'none'>, string> = { sign_flip: 'sign_flip', scale100: 'scale100', inflated_examples: 'inflated' };

/** No bound at all: what FedAvg did before the admission checks. */
const PLAIN = { strategy: 'fedavg', max_update_norm: 1e12, min_cosine: -1, max_norm_ratio: 1e12, max_weight_fraction: 1 };
const BOUNDED = { max_update_norm: 25, min_cosine: 0, max_norm_ratio: 10, max_weight_fraction: Number(args['max-weight-fraction']) };

const rounds = Number(args.rounds);
const envoys = envoyNames(Number(args.envoys));
const hostileEnvoy = envoys[envoys.length - 1];
const dataPath = findPneumoniaMnist(args.data, 'pass --data');
/** A setting's name for --only: strategy, then +secagg, then +sub<size> (e.g. median+secagg+sub3). */
const settingName = (s: Setting) => s.strategy + (s.secagg ? '+secagg' : '') + (s.subCohorts ? `+sub${s.subCohorts}` : '');
const settings = SETTINGS.filter((s) => !args.only || args.only.split(',').includes(settingName(s)));
const hostiles = HOSTILES.filter((h) => !args.hostile || args.hostile.split(',').includes(h));

async function runRow(setting: Setting, hostile: Hostile) {
  const name = `${settingName(setting)}-${hostile}`.replace(/[_+]/g, '-');
  const dir = resolve('runs', `bench-robustness-${name}-${Date.now()}`);
  const aggregation = setting.bounds
    ? { ...BOUNDED, strategy: setting.strategy === 'fedavg_bounds' ? 'fedavg' : setting.strategy, min_envoys: 2 }
    : { ...PLAIN, min_envoys: 2 };
  const experiment = {
    name: 'robustness', rounds, min_envoys_to_start: envoys.length,
    // Defenses against leakage off: this bench is about influence, and its recorded rows ran without them.
    model: { width: Number(args.width), seed: 1, precode: { enabled: false } },
    training: { optimizer: 'adam', learning_rate: 0.001, local_epochs: 1, batch_size: 32, class_weighting: true, batch_norm_statistics: 'batch' },
    aggregation, secagg: { enabled: setting.secagg, sub_cohort_size: setting.subCohorts ?? 0 }, start_timeout_seconds: 600, round_timeout_seconds: 1800,
  };
  const events: ExperimentEvent[] = [];
  const started = performance.now();
  try {
    const { final } = await runLocalFederation({
      dir, federation: 'robustness', dataPath, envoys, partition: { scheme: 'dirichlet', alpha: 1, seed: 7 }, experiment,
      provisionExamples: setting.bounds, registrationTimeoutMs: 600_000, silenceTimeoutMs: 1_800_000, privacy: { preset: 'open' },
      onEvent: (e) => events.push(e),
      spawnEnvoy: (envoy, configFile, logFile) => (hostile === 'none' || envoy !== hostileEnvoy ? undefined
        : spawnScript(envoy, 'test/adversary/hostile-envoy.ts', ['--config', configFile], logFile, {
          SECFLOW_HOSTILE_PLAN: JSON.stringify({ robustness: Array(rounds).fill(MODE[hostile]) }),
          ...(hostile === 'inflated_examples' ? { SECFLOW_HOSTILE_REGISTER_EXAMPLES: '1000000' } : {}),
        })),
    });
    if (final.type !== 'finished') throw new Error(`${name}: ${final.message}`);
    const director = readFileSync(join(dir, 'logs', 'director.log'), 'utf8');
    return {
      strategy: setting.strategy === 'fedavg_bounds' && setting.secagg ? 'fedavg_bounds' : setting.strategy,
      secagg: setting.secagg, sub_cohort_size: setting.subCohorts ?? 0, bounds: setting.bounds, hostile,
      test_auc: final.test?.roc_auc ?? null,
      test_accuracy: final.test?.accuracy ?? null,
      refused_rounds: events.filter((e) => e.type === 'round_failed').length,
      hostile_refusals: (director.match(new RegExp(`continuing without ${hostileEnvoy}: its update`, 'g')) ?? []).length,
      refused_sub_cohorts: (director.match(/sub-cohort [^\n]* refused: |continuing without the secure sum of/g) ?? []).length,
      hostile_excluded: new RegExp(`${hostileEnvoy} is excluded from the rest`).test(director),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Awaited<ReturnType<typeof runRow>>[] = [];
const out = join(HERE, 'results', 'robustness.json');
const started = performance.now();
const load = loadavg();
for (const setting of settings) {
  for (const hostile of hostiles) {
    const row = await runRow(setting, hostile);
    rows.push(row);
    console.log(`${row.strategy.padEnd(14)} secagg=${String(row.secagg).padEnd(5)} sub-cohorts=${row.sub_cohort_size} hostile=${hostile.padEnd(18)} test AUC ${row.test_auc?.toFixed(4)}  ` +
      `(${row.refused_rounds} rounds refused, ${row.hostile_refusals} hostile updates refused, ${row.seconds.toFixed(0)} s)`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({
      command: `npx tsx bench/robustness.bench.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
      date: new Date().toISOString(), machine: { cores: cpus().length, loadavg_start: load, loadavg_end: loadavg() },
      envoys: envoys.length, hostile_envoy: hostileEnvoy, rounds, width: Number(args.width), bounds: BOUNDED,
      seconds: (performance.now() - started) / 1000, rows,
    }, null, 2) + '\n');
  }
}
