/**
 * Scale bench (not a test): how big a federation one machine holds. For 3, 10, 30 and 100 envoys, a
 * provisioned federation with secure aggregation (SecAgg+: 2 ceil(log2 n) neighbours each above 8 envoys), all
 * envoys in one process sharing one TensorFlow (`secflow envoy start -c a.yaml -c b.yaml ...`: each keeps its own
 * kit, NATS connection, shard and policy), IID shares of PneumoniaMNIST train. Per size: the rounds' wall times,
 * the time to get every envoy registered, and the peak memory (the sum of each process's peak RSS: director,
 * envoys' process, NATS server; an upper bound on the machine's peak). Writes bench/results/scale.json.
 *
 *   npm run bench:scale [-- --sizes 3,10,30,100 --rounds 2 --width 8]
 *
 * The envoys run an open privacy policy: 100 shares of 4,708 images are 47 images each, under the default
 * policy's 64-image minimum per update.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { findPneumoniaMnist } from '../ts/core/data/fetch.ts';
import type { ExperimentEvent } from '../ts/core/messages.ts';
import { runExperimentRemotely } from '../ts/experiment/client.ts';
import { startLocalFederation } from '../ts/local/federation.ts';
import { loadConfigFile } from '../ts/core/config/load.ts';
import { demoExperiment } from '../ts/demo/experiment.ts';
import { effectiveNeighbours } from '../ts/core/secagg/params.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '3,10,30,100' }, rounds: { type: 'string', default: '2' }, width: { type: 'string', default: '8' },
    data: { type: 'string' }, keep: { type: 'boolean', default: false },
  },
});
const sizes = args.sizes!.split(',').map(Number);
const rounds = Number(args.rounds);
const dataPath = findPneumoniaMnist(args.data, 'pass --data');
const COMMAND = `npm run bench:scale${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

interface SizeRow {
  envoys: number; envoy_processes: number; neighbours: string; registration_seconds: number;
  round_seconds: number[]; max_round_seconds: number; peak_memory_mib: number; peak_memory_by_process_mib: Record<string, number>;
  final_test_auc: number | null; dropped: number;
}

/** Peak resident memory of a process so far (Linux VmHWM), in MiB. */
function peakMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : 0;
}

/** The nats-server this federation started (its only child that is not a node process). */
function natsPid(): number | undefined {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === process.pid && cmd.includes('nats-server')) return Number(pid);
    } catch { /* gone meanwhile */ }
  }
  return undefined;
}

async function measure(n: number): Promise<SizeRow> {
  const dir = resolve('runs', `bench-scale-${n}-${Date.now()}`);
  const envoys = Array.from({ length: n }, (_, i) => `hospital-${String(i + 1).padStart(3, '0')}`);
  const experiment = { ...demoExperiment({ rounds, width: Number(args.width), epochs: 1, secagg: true, defenses: true }), name: `scale-${n}`, min_envoys_to_start: n };
  const started = performance.now();
  const fed = await startLocalFederation({
    dir, federation: 'scale', dataPath, envoys, envoyProcesses: 1, partition: { scheme: 'iid', alpha: 1, seed: 7 },
    experiment, privacy: { preset: 'open' }, registrationTimeoutMs: 900_000, heartbeat: { interval_seconds: 5, timeout_seconds: 60 },
  });
  const registration = (performance.now() - started) / 1000;
  try {
    const config = loadConfigFile(fed.files.experiment, ExperimentSchema);
    const events: ExperimentEvent[] = [];
    const final = await runExperimentRemotely(fed.scientist, config, {
      silenceTimeoutMs: 1_800_000,
      onEvent: (e) => { events.push(e); if (e.type === 'round') process.stdout.write(`  ${n} envoys: round ${e.round! + 1}/${rounds} in ${e.seconds?.toFixed(1)} s\n`); },
    });
    if (final.type !== 'finished') throw new Error(`${n} envoys: the experiment did not finish: ${final.message ?? final.type}`);
    const byProcess: Record<string, number> = { director: peakMiB(fed.director.child.pid!) };
    for (const e of fed.envoys) byProcess[e.name] = peakMiB(e.child.pid!);
    const nats = natsPid();
    if (nats) byProcess['nats-server'] = peakMiB(nats);
    const roundEvents = events.filter((e) => e.type === 'round');
    const k = effectiveNeighbours(config.secagg.neighbours, n); // the director's own rule, not a copy of it
    return {
      envoys: n, envoy_processes: fed.envoys.length, neighbours: `${k} (auto)`, registration_seconds: registration,
      round_seconds: roundEvents.map((e) => e.seconds ?? NaN), max_round_seconds: Math.max(...roundEvents.map((e) => e.seconds ?? NaN)),
      peak_memory_mib: Object.values(byProcess).reduce((a, b) => a + b, 0), peak_memory_by_process_mib: byProcess,
      final_test_auc: final.test?.roc_auc ?? null, dropped: roundEvents.reduce((d, e) => d + (e.dropped?.length ?? 0), 0),
    };
  } finally {
    await fed.stop();
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

const rows: SizeRow[] = [];
const load = loadavg();
for (const n of sizes) {
  const row = await measure(n);
  rows.push(row);
  console.log(`${String(n).padStart(4)} envoys: registration ${row.registration_seconds.toFixed(1)} s, rounds ${row.round_seconds.map((s) => s.toFixed(1)).join(', ')} s, ` +
    `peak memory ${row.peak_memory_mib.toFixed(0)} MiB, test AUC ${row.final_test_auc?.toFixed(4)}, dropped ${row.dropped}`);
  writeFileSync(join(HERE, 'results', 'scale.json'), JSON.stringify({
    command: COMMAND, date: new Date().toISOString(),
    machine: { cores: cpus().length, memory_gib: totalmem() / 2 ** 30, loadavg_start: load, loadavg_end: loadavg() },
    rounds, width: Number(args.width), rows,
  }, null, 2) + '\n');
}
