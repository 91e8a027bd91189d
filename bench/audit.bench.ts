/**
 * The privacy–utility audit, recorded: runs `secflow leakage audit` on a sweep (default: the issue's
 * default sweep) into bench/results/audit/ (audit.csv/json, scatter.png, report.html, grids) and writes
 * the headline numbers to bench/results/audit.json:
 *   precode_psnr_gap_db     with PRECODE, over all rounds and standard attacks, the largest per-image PSNR
 *                           minus that image's floor
 *   precode_auc_drop        test ROC-AUC of the undefended run minus that of the PRECODE run (same seeds)
 *   adaptive_psnr_gap_db    the same gap for the analytic attack on PRECODE (linear-layer leakage + feature inversion)
 *   worst_gap_db            per configuration: the largest gap over every attack and round, and the attack that won
 *   precode_batch_statistics_psnr_gap_db  the same gap for PRECODE alone, whose updates still carry the
 *                           image's batch-norm statistics (the 'precode' configuration adds shard statistics)
 *   dp_epsilon_max_rel_error  the RDP accountant against Opacus on the stored grid (test/fixtures)
 *
 *   npx tsx bench/audit.bench.ts [--config audit.yaml] [--rounds 3] [--only none,precode] [--keep]
 *   (--keep: the configurations of the existing results/audit/audit.json that --only leaves out stay in it)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../ts/core/config/load.ts';
import { RdpAccountant } from '../ts/core/privacy/rdp-accountant.ts';
import { AuditSweepSchema } from '../ts/leakage/audit/config.ts';
import { runAudit } from '../ts/leakage/audit/cli-run.ts';
import type { AuditResults } from '../ts/leakage/audit/results.ts';
import { gradientMatchingGapDb } from '../ts/leakage/audit/svg-scatter.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({ options: { config: { type: 'string' }, rounds: { type: 'string' }, only: { type: 'string' }, keep: { type: 'boolean', default: false } } });

const sweep = args.config ? loadConfigFile(args.config, AuditSweepSchema) : AuditSweepSchema.parse({});
sweep.out = resolve(HERE, 'results', 'audit');
if (args.rounds) sweep.rounds = Number(args.rounds);
if (args.only) sweep.configurations = sweep.configurations.filter((c) => args.only!.split(',').includes(c.name));

const started = performance.now();
const load = loadavg();
const outputs = await runAudit(sweep, args.config, (line) => console.log(line), { keep: args.keep });
const results = JSON.parse(readFileSync(outputs.json, 'utf8')) as AuditResults;
const byName = (name: string) => results.configurations.find((c) => c.name === name);
const none = byName('none');
const precode = byName('precode');

const summary = {
  command: `npx tsx bench/audit.bench.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`,
  machine: { cores: cpus().length, loadavg_start: load, loadavg_end: loadavg() },
  rounds: sweep.rounds,
  attacks: sweep.attacks,
  probe: sweep.probe,
  // Gradient matching (IG, DLG) alone, as the lab measured before its analytic attacks; worst_gap_db has every attack.
  precode_psnr_gap_db: (precode && gradientMatchingGapDb(precode)) ?? null,
  precode_worst_gap_db: precode?.worst_gap_db ?? null,
  precode_auc_drop: none && precode ? none.utility.roc_auc - precode.utility.roc_auc : null,
  adaptive_psnr_gap_db: precode?.by_attack.analytic?.psnr_gap_max_db ?? null,
  precode_batch_statistics_psnr_gap_db: byName('precode-batch-statistics')?.leakage.psnr_gap_max_db ?? null,
  dp_epsilon_max_rel_error: accountantError(),
  configurations: results.configurations.map((c) => ({
    name: c.name, envoys: c.envoys, roc_auc: c.utility.roc_auc, accuracy: c.utility.accuracy, sensitivity: c.utility.sensitivity,
    specificity: c.utility.specificity, dp_epsilon: c.dp_epsilon ?? null, psnr_worst_case: c.leakage.psnr_worst_case,
    ssim_worst_case: c.leakage.ssim_worst_case,
    psnr_gap_max_db: c.leakage.psnr_gap_max_db, psnr_gap_mean_db: c.leakage.psnr_gap_mean_db,
    worst_gap_db: c.worst_gap_db, worst_attack: c.worst_attack, round_winners: c.round_winners,
    by_attack: c.by_attack,
  })),
  outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.replace(resolve(HERE, '..') + '/', '')])),
  seconds: (performance.now() - started) / 1000,
};
mkdirSync(join(HERE, 'results'), { recursive: true });
writeFileSync(join(HERE, 'results', 'audit.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(JSON.stringify({ ...summary, configurations: undefined }, null, 2));

/** Largest relative error in epsilon of the accountant against Opacus over the stored grid. */
function accountantError(): number {
  const fixture = JSON.parse(readFileSync(join(HERE, '..', 'test', 'fixtures', 'dp-accountant.json'), 'utf8')) as {
    grid: { sample_rate: number; noise_multiplier: number; steps: number; delta: number; epsilon: number }[];
  };
  return Math.max(...fixture.grid.map((p) => {
    const accountant = new RdpAccountant();
    accountant.step(p.noise_multiplier, p.sample_rate, p.steps);
    return Math.abs(accountant.epsilon(p.delta).epsilon - p.epsilon) / Math.abs(p.epsilon);
  }));
}
