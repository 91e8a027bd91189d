/**
 * The privacy–utility sweep: for each configuration, a real audited federation on this machine (director
 * and envoy processes over NATS, a probe round each round), then the attacks on what the director
 * received, scored against what the envoys recorded. One ConfigurationResult per configuration.
 */
import { existsSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { auditRoundDir, readAuditRecord } from '../../core/audit.ts';
import { loadPneumoniaMnist } from '../../core/data/npz.ts';
import { readMetricsLog } from '../../director/run-folder.ts';
import { runLocalFederation } from '../../local/federation.ts';
import { resolvePolicy } from '../../core/config/privacy.ts';
import type { ExperimentConfig } from '../../core/config/experiment.ts';
import { probeTraining } from '../../director/audit.ts';
import { brokenRule, factsFromConfig } from '../../envoy/policy/rules.ts';
import { probeAttackConfig } from '../audit-attack.ts';
import { runLeakage, type LeakageRunConfig } from '../run.ts';
import type { AttackSpec, AuditConfiguration, AuditSweep } from './config.ts';
import { gapOverChance, type AttackScore, type AuditResults, type ConfigurationResult } from './results.ts';

const FEDERATION = 'audit';
type Say = (line: string) => void;

/** Runs every configuration; `progress` gets the results so far after each (a long sweep keeps what it measured). */
export async function runSweep(sweep: AuditSweep, dataPath: string, say: Say, progress?: (partial: AuditResults) => void): Promise<AuditResults> {
  const floorImages = loadPneumoniaMnist(dataPath, 'train').images;
  const configurations: ConfigurationResult[] = [];
  const created = new Date().toISOString();
  for (const [i, c] of sweep.configurations.entries()) {
    say(`\n[${i + 1}/${sweep.configurations.length}] ${c.name}: ${c.description || 'no description'}`);
    const result = await runConfiguration(sweep, c, dataPath, floorImages, say);
    say(`  ${c.name}: test ROC-AUC ${result.utility.roc_auc.toFixed(4)}; worst-case PSNR ${result.leakage.psnr_worst_case.toFixed(2)} dB (${result.worst_attack}), ` +
      `gap above the floor ${result.worst_gap_db.toFixed(2)} dB`);
    configurations.push(result);
    progress?.({ sweep: sweep.name, created_at: created, data: dataPath, configurations: [...configurations] });
  }
  return { sweep: sweep.name, created_at: created, data: dataPath, configurations };
}

export function envoyNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `hospital-${i < 26 ? String.fromCharCode(97 + i) : i + 1}`);
}

async function runConfiguration(sweep: AuditSweep, c: AuditConfiguration, dataPath: string, floorImages: Float32Array, say: Say): Promise<ConfigurationResult> {
  const started = performance.now();
  const envoys = envoyNames(c.envoys ?? sweep.envoys);
  const dir = join(sweep.out, c.name);
  // Every sweep measures afresh: a director finding an earlier run of the same experiment would resume it.
  rmSync(dir, { recursive: true, force: true });
  const experiment = experimentOf(sweep, c, envoys);
  const { final, config, files } = await runLocalFederation({
    dir, federation: FEDERATION, dataPath, envoys, partition: sweep.partition, trainLimit: sweep.train_limit, testLimit: sweep.test_limit,
    experiment, say: (line) => say(`  ${line}`),
    // An audit measures leakage, not liveness: on a loaded machine (a sweep beside other work on 2 cores) an
    // envoy busy training may not heartbeat for tens of seconds, and a round lost to that measures nothing.
    heartbeat: { interval_seconds: 2, timeout_seconds: 120 }, registrationTimeoutMs: 600_000, silenceTimeoutMs: 3_600_000,
    // The default configuration keeps every hospital's default policy but for one local opt-in: it accepts the
    // audit's probe, which must still keep every other rule (images, batch, secure cohort, defenses). The others
    // run single-image probes that only an open policy accepts.
    privacy: c.defaults ? { allow_probes: true } : { preset: 'open' },
  });
  if (final.type !== 'finished' || !final.test) throw new Error(`configuration ${c.name}: the experiment did not finish: ${final.message ?? final.type}`);
  if (final.test.roc_auc === null) throw new Error(`configuration ${c.name}: the test set has one class only, so ROC-AUC is undefined`);
  const runDir = final.run_dir!;
  const run = { runDir, envoyAudit: files.envoyAudit, federation: FEDERATION, experiment: config.name };
  const attacks: AttackScore[] = [];
  for (let round = 0; round < config.rounds; round++) {
    const recordDir = auditRoundDir(runDir, round, 'probe');
    if (!existsSync(join(recordDir, 'record.json'))) { say(`  round ${round + 1}: no probe record (the probe failed); skipped`); continue; }
    const record = readAuditRecord(recordDir);
    for (const target of targetsOf(record.view, envoys, sweep.attack_envoys)) {
      // An envoy whose probe the director did not receive (it dropped out, say) leaves nothing to attack.
      const missing = target.filter((e) => !record.updates.some((u) => u.envoys.includes(e)));
      if (missing.length) { say(`  round ${round + 1}: no probe update from ${missing.join(', ')}; skipped`); continue; }
      const outDir = join(dir, 'attacks', `round-${round + 1}-${target.length > 1 ? 'aggregate' : target[0]}`);
      const attack = (spec: AttackSpec) =>
        scored(probeAttackConfig(run, round, target, attackSettings(spec)), spec.attack, round, target, floorImages, outDir, sweep.out, say);
      for (const spec of sweep.attacks.filter((a) => applies(a, config.model.precode.enabled, target))) attacks.push(await attack(spec));
    }
  }
  return {
    name: c.name, description: c.description, envoys: envoys.length, rounds: config.rounds,
    defenses: {
      precode: config.model.precode, dp: config.training.dp, pruning: config.training.pruning, secagg: config.secagg,
      shard_statistics: config.training.batch_norm_statistics === 'shard',
    },
    utility: { roc_auc: final.test.roc_auc, accuracy: final.test.accuracy, sensitivity: final.test.sensitivity, specificity: final.test.specificity },
    dp_epsilon: maxEpsilon(runDir),
    attacks, ...judged(attacks),
    default_policy: defaultPolicyVerdict(config, envoys.length),
    run_dir: runDir, seconds: (performance.now() - started) / 1000,
  };
}

/**
 * The experiment a configuration runs. `defaults`: the experiment's own defaults (secure aggregation, PRECODE
 * with shard statistics), probed with the most revealing update a default envoy's policy accepts. The others:
 * plain (no secure aggregation, PRECODE or shard statistics) unless the configuration turns them on.
 */
function experimentOf(sweep: AuditSweep, c: AuditConfiguration, envoys: string[]) {
  const base = {
    name: `audit-${c.name.replace(/[^A-Za-z0-9_-]/g, '_')}`, rounds: sweep.rounds, min_envoys_to_start: envoys.length,
    aggregation: { strategy: 'fedavg', min_envoys: Math.max(1, Math.ceil(envoys.length / 2)) },
  };
  if (c.defaults) {
    const { width, seed, init } = sweep.model;
    const { batch_norm_statistics: _bn, ...training } = sweep.training;
    return { ...base, model: { width, seed, init }, training: { ...training, ...c.training }, audit: { enabled: true, probe: policyMinimalProbe() } };
  }
  return {
    ...base,
    model: { precode: { enabled: false }, ...sweep.model, ...c.model },
    training: { batch_norm_statistics: 'batch', ...sweep.training, ...c.training },
    secagg: { enabled: false, ...c.secagg }, audit: { enabled: true, probe: sweep.probe },
  };
}

/** The most revealing update a default envoy sends: its fewest images, all in one plain SGD step. */
export function policyMinimalProbe() {
  const p = resolvePolicy();
  return { examples_per_round: p.minExamples, batch_size: Math.max(p.minBatchSize, p.minExamples), local_epochs: 1, optimizer: 'sgd', momentum: 0, learning_rate: 0.001 };
}

/** Whether an envoy on the default privacy policy would train this configuration's round task and its probe. */
function defaultPolicyVerdict(config: ExperimentConfig, cohort: number): ConfigurationResult['default_policy'] {
  const policy = resolvePolicy();
  const verdict = (training: ExperimentConfig['training'], kind: 'round' | 'probe') => {
    const broken = brokenRule(policy, factsFromConfig(config, training, kind, cohort));
    return broken ? `refused (${broken.rule})` : 'accepted';
  };
  return { round: verdict(config.training, 'round'), probe: config.audit.probe ? verdict(probeTraining(config), 'probe') : 'no probe' };
}

/** Whose updates to attack: the first k envoys one by one, or the one aggregate secure aggregation left. */
function targetsOf(view: 'updates' | 'aggregate', envoys: string[], k: number): string[][] {
  return view === 'aggregate' ? [envoys] : envoys.slice(0, k).map((e) => [e]);
}

/** precode-ignore reads one envoy's upstream gradient off PRECODE's encoder; every other attack applies anywhere. */
function applies(spec: AttackSpec, precode: boolean, target: string[]): boolean {
  return spec.attack !== 'precode-ignore' || (precode && target.length === 1);
}

function attackSettings(spec: AttackSpec) {
  return {
    attack: spec.attack, iterations: spec.iterations, restarts: spec.restarts, learningRate: spec.learning_rate, tvWeight: spec.tv_weight, seed: 0,
    ...(spec.polish_iterations !== undefined ? { polishIterations: spec.polish_iterations } : {}),
  };
}

async function scored(run: Omit<LeakageRunConfig, 'floorImages'>, attack: string, round: number, envoys: string[], floorImages: Float32Array,
  outDir: string, root: string, say: Say): Promise<AttackScore> {
  const r = await runLeakage({ ...run, floorImages, outDir });
  say(`  round ${round + 1} ${attack} on ${envoys.length > 1 ? `the aggregate of ${envoys.length}` : envoys[0]}: ` +
    `PSNR ${r.psnr_mean.toFixed(2)} dB (best ${r.psnr_best.toFixed(2)}), floor ${r.floor_psnr_mean.toFixed(2)} dB` +
    (envoys.length > 1 || run.batch > 1 ? `, chance scores +${r.chance_gap_db.toFixed(2)} dB on a batch of ${run.batch}` : ''));
  return {
    attack, round: round + 1, envoys, grid: relative(root, join(outDir, `${run.attack}-grid.png`)),
    psnr: r.images.map((s) => s.psnr), ssim: r.images.map((s) => s.ssim),
    floor_psnr: r.images.map((s) => s.floor.psnr), floor_ssim: r.images.map((s) => s.floor.ssim), chance_gap_db: r.chance_gap_db,
  };
}

export function summarizeLeakage(scores: AttackScore[]): ConfigurationResult['leakage'] {
  const psnr = scores.flatMap((s) => s.psnr);
  const ssim = scores.flatMap((s) => s.ssim);
  const gaps = scores.flatMap((s) => s.psnr.map((p, i) => p - s.floor_psnr[i]));
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  return {
    psnr_mean: mean(psnr), psnr_worst_case: Math.max(...psnr), ssim_mean: mean(ssim), ssim_worst_case: Math.max(...ssim),
    psnr_gap_max_db: Math.max(...gaps), psnr_gap_mean_db: mean(gaps),
  };
}

/** The configuration's verdict over every attack: the worst case, who reached it, each attack's, each round's winner. */
export function judged(attacks: AttackScore[]): Pick<ConfigurationResult, 'leakage' | 'worst_gap_db' | 'worst_attack' | 'by_attack' | 'round_winners'> {
  const leakage = summarizeLeakage(attacks);
  const gapOf = gapOverChance;
  const names = [...new Set(attacks.map((a) => a.attack))];
  const by_attack = Object.fromEntries(names.map((name) => {
    const mine = attacks.filter((a) => a.attack === name);
    return [name, { psnr_gap_max_db: Math.max(...mine.map(gapOf)), psnr_worst_case: summarizeLeakage(mine).psnr_worst_case }];
  }));
  const rounds = [...new Set(attacks.map((a) => a.round))].sort((a, b) => a - b);
  const round_winners = rounds.map((round) => {
    const best = attacks.filter((a) => a.round === round).reduce((w, a) => (gapOf(a) > gapOf(w) ? a : w));
    return { round, attack: best.attack, gap_db: gapOf(best) };
  });
  const worst = attacks.length ? attacks.reduce((w, a) => (gapOf(a) > gapOf(w) ? a : w)) : undefined;
  return { leakage, worst_gap_db: worst ? gapOf(worst) : -Infinity, worst_attack: worst?.attack ?? 'none', by_attack, round_winners };
}

/** The largest epsilon any envoy reported under DP-SGD (metrics.jsonl, split 'privacy'), if any. */
function maxEpsilon(runDir: string): number | undefined {
  const eps = readMetricsLog(runDir).filter((r) => r.split === 'privacy' && typeof r.metrics.epsilon === 'number').map((r) => r.metrics.epsilon!);
  return eps.length ? Math.max(...eps) : undefined;
}
