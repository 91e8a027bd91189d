/**
 * `npm run federation`: a whole federation on this machine. A private NATS server, a director holding
 * PneumoniaMNIST's official test split, three envoys ("hospitals") each with a non-IID share of the
 * training split, and one experiment, all as separate processes talking only through NATS.
 *
 *   npm run federation -- [--rounds 5] [--width 16] [--data path/to/pneumoniamnist.npz] [--no-secagg] [--no-defenses] [--audit] [--insecure [--nats nats://host:4222]]
 *                         [--dashboard-port 8765 | --no-dashboard] [--train-limit N] [--test-limit N]
 *
 * Protected by default, three ways: the bus (below), the experiment (secure aggregation, PRECODE with
 * shard statistics) and each hospital's privacy policy (the default one: envoy.yaml has no privacy section).
 * --no-secagg / --no-defenses turn the experiment's protections off for comparison, and the hospitals' policies
 * with them (they would refuse such tasks); --audit asks for single-image probes, which only an open policy
 * accepts, and attacks them: it implies both.
 * Secure by default: the demo provisions a throw-away federation in its run folder (kits/: CA, server and
 * participant kits) and runs its own nats-server with that config: mutual TLS, nkey authentication,
 * per-identity permissions, every message signed and sealed. --insecure turns all of that off, loudly.
 * --audit records what the director receives, adds a probe round (one SGD step on one image per envoy) and
 *   afterwards attacks hospital-a's probe update of the first and last rounds (Inverting Gradients).
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findPneumoniaMnist } from '../core/data/fetch.ts';
import { finalLine, tableHeader, tableRow } from '../experiment/table.ts';
import type { LocalAuditedRun } from '../leakage/audit-attack.ts';
import { runLocalFederation } from '../local/federation.ts';
import { INSECURE_WARNING } from '../core/trust/index.ts';
import { DEMO_ENVOYS, DEMO_PARTITION, demoExperiment } from './experiment.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    width: { type: 'string', default: '16' },
    epochs: { type: 'string', default: '1' },
    strategy: { type: 'string', default: 'fedavg' },
    'server-lr': { type: 'string' },
    nats: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string', default: 'runs' },
    secagg: { type: 'boolean', default: true }, // the default; kept so `--secagg` still parses
    'no-secagg': { type: 'boolean', default: false },
    'no-defenses': { type: 'boolean', default: false },
    audit: { type: 'boolean', default: false },
    'attack-iterations': { type: 'string', default: '2000' },
    insecure: { type: 'boolean', default: false },
    'dashboard-port': { type: 'string', default: '8765' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    'no-dashboard': { type: 'boolean', default: false },
  },
});

const FEDERATION = 'pneumonia-demo';


/** After an audited run: what an honest-but-curious director could rebuild from hospital-a's probes. */
async function attackProbes(run: LocalAuditedRun, dataPath: string, rounds: number): Promise<void> {
  const { attackAuditedProbes } = await import('./audit-attack.ts');
  console.log('\naudit: Inverting Gradients on what the director received from hospital-a (probe updates)');
  const scores = await attackAuditedProbes(run, 'hospital-a', [...new Set([0, rounds - 1])], dataPath, Number(args['attack-iterations']));
  for (const { round, ...r } of scores) {
    console.log(`  round ${round + 1}: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)} (no-information floor ${r.floorPsnr.toFixed(2)} dB: gap ${(r.psnr - r.floorPsnr).toFixed(2)} dB)  grid: ${r.grid}`);
  }
}

/** A quick look (notebooks, tests): only the first N images of a split. */
function optionalInt(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive whole number, got '${value}'`);
  return n;
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const dir = resolve(args.out!, `demo-${stamp}`);
  const dataPath = findPneumoniaMnist(args.data, 'pass --data');
  const secagg = !args['no-secagg'] && !args.audit;
  const defenses = !args['no-defenses'] && !args.audit;
  console.log(`FL-SecFlow demo${args.audit ? ', audited' : ''}: data ${dataPath}`);
  if (args.insecure) console.log(`${INSECURE_WARNING}\n!!! (--insecure given)`);
  else console.log('protection: TLS, authentication and signatures are on (provisioned kits in the run folder; --insecure turns them off)');
  console.log(secagg ? 'protection: secure aggregation (SecAgg+): the director learns only the sum of the three hospitals\' updates'
    : '!!! NO SECURE AGGREGATION (--no-secagg or --audit): the director sees every hospital\'s update');
  console.log(defenses ? 'protection: PRECODE bottleneck with batch-norm statistics over each shard'
    : '!!! NO GRADIENT-LEAKAGE DEFENSE (--no-defenses or --audit): updates are plain');
  console.log(secagg && defenses ? 'protection: each hospital\'s default privacy policy (no update from fewer than 64 images or batches under 16, secure sums of 3 or more, no probes)'
    : '!!! hospitals run an OPEN privacy policy so they accept this comparison run');
  console.log('protection: each hospital checks its director: the same model as the rest of the cohort (signed task digests), ' +
    'provisioned hospitals only, round 1 built from the seed and every later model within reach of the last');
  let printedHeader = false;
  const { final, config, files } = await runLocalFederation({
    dir, federation: FEDERATION, natsUrl: args.nats, insecure: args.insecure, dataPath, envoys: DEMO_ENVOYS,
    partition: DEMO_PARTITION, trainLimit: optionalInt(args['train-limit']), testLimit: optionalInt(args['test-limit']), dashboard: args['no-dashboard'] ? undefined : { port: Number(args['dashboard-port']) },
    experiment: demoExperiment({
      rounds: Number(args.rounds), width: Number(args.width), epochs: Number(args.epochs), secagg, defenses, audit: args.audit,
      strategy: args.strategy, serverLearningRate: args['server-lr'] ? Number(args['server-lr']) : undefined,
    }),
    ...(secagg && defenses ? {} : { privacy: { preset: 'open' } }),
    say: (line) => console.log(line),
    onEvent: (e) => {
      if (!printedHeader) { console.log(`\n${tableHeader()}`); printedHeader = true; }
      if (e.type === 'round' || e.type === 'round_failed') console.log(tableRow(e));
      if (e.type === 'round_failed') console.log(`  ${e.message}`);
    },
  });
  if (final.type === 'failed') throw new Error(`experiment failed: ${final.message}`);
  console.log(`\nmetrics: ${join(final.run_dir!, 'metrics.csv')}  TensorBoard: tensorboard --logdir ${join(final.run_dir!, 'tensorboard')}`);
  if (args.audit) await attackProbes({ runDir: final.run_dir!, envoyAudit: files.envoyAudit, federation: FEDERATION, experiment: config.name }, dataPath, config.rounds);
  console.log(finalLine(final));
}

main().catch((error: Error) => {
  process.stderr.write(`federation demo failed: ${error.message}\n`);
  process.exit(1);
});
