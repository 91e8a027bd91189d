/**
 * `npm run federation`: a whole federation on this machine. A private NATS server, a director holding
 * PneumoniaMNIST's official test split, three envoys ("hospitals") each with a non-IID share of the
 * training split, and one experiment, all as separate processes talking only through NATS.
 *
 *   npm run federation -- [--rounds 5] [--width 16] [--secagg] [--audit] [--nats nats://host:4222] [--data path/to/pneumoniamnist.npz]
 *
 * --secagg turns on secure aggregation (SecAgg+, native addon): the director learns only the sum of updates.
 * --audit records what the director receives, adds a probe round (one SGD step on one image per envoy) and
 *   afterwards attacks hospital-a's probe update of the first and last rounds (Inverting Gradients).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ExperimentSchema } from '../core/config/experiment.ts';
import { loadConfigFile } from '../core/config/load.ts';
import { connectNats } from '../core/transport/connection.ts';
import { runExperimentRemotely } from '../experiment/client.ts';
import { tableHeader, tableRow } from '../experiment/table.ts';
import { writeFederationFiles } from '../local/federation-files.ts';
import { startLocalNats, type LocalNats } from '../local/nats-server.ts';
import { spawnRole, waitForOutput, type RoleProcess } from '../local/roles.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    width: { type: 'string', default: '16' },
    epochs: { type: 'string', default: '1' },
    nats: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string', default: 'runs' },
    secagg: { type: 'boolean', default: false },
    audit: { type: 'boolean', default: false },
    'attack-iterations': { type: 'string', default: '2000' },
  },
});

/** The attack papers' setting, asked of every envoy each round when auditing: one SGD step on one image. */
const AUDIT_PROBE = { examples_per_round: 1, batch_size: 1, local_epochs: 1, optimizer: 'sgd', momentum: 0, learning_rate: 0.001 };

/** After an audited run: what an honest-but-curious director could rebuild from hospital-a's probes. */
async function attackProbes(runDir: string, envoyAudit: string, dataPath: string, rounds: number): Promise<void> {
  const { attackAuditedProbe } = await import('./audit-attack.ts');
  console.log('\naudit: Inverting Gradients on what the director received from hospital-a (probe updates)');
  for (const round of [...new Set([0, rounds - 1])]) {
    const r = await attackAuditedProbe({ runDir, envoyAudit, federation: 'pneumonia-demo', envoy: 'hospital-a', round, dataPath, iterations: Number(args['attack-iterations']) });
    console.log(`  round ${round + 1}: PSNR ${r.psnr.toFixed(2)} dB, SSIM ${r.ssim.toFixed(3)} (no-information floor ${r.floorPsnr.toFixed(2)} dB: gap ${(r.psnr - r.floorPsnr).toFixed(2)} dB)  grid: ${r.grid}`);
  }
}

function findData(): string {
  const candidates = [args.data, '../shared/data/pneumoniamnist.npz', 'data/pneumoniamnist.npz'].filter(Boolean) as string[];
  const found = candidates.map((c) => resolve(c)).find((c) => existsSync(c));
  if (!found) throw new Error(`PneumoniaMNIST not found (looked for ${candidates.join(', ')}); run \`npx secflow data fetch\` or pass --data`);
  return found;
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const dir = resolve(args.out!, `demo-${stamp}`);
  const started: RoleProcess[] = [];
  let nats: LocalNats | undefined;
  const cleanup = async () => {
    await Promise.all(started.map((p) => p.stop()));
    await nats?.stop();
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const dataPath = findData();
    let natsUrl = args.nats;
    if (!natsUrl) {
      nats = await startLocalNats();
      natsUrl = nats.url;
    }
    console.log(`FL-SecFlow demo${args.secagg ? ' with secure aggregation (SecAgg+)' : ''}: NATS ${natsUrl}, data ${dataPath}\nrun folder ${dir} (logs/ has each process's output)`);
    const files = writeFederationFiles({
      dir, federation: 'pneumonia-demo', natsUrl, dataPath, envoys: ['hospital-a', 'hospital-b', 'hospital-c'],
      partition: { scheme: 'dirichlet', alpha: 1.0, seed: 7 },
      experiment: {
        name: `pneumonia-fedavg${args.secagg ? '-secagg' : ''}${args.audit ? '-audit' : ''}`, rounds: Number(args.rounds), min_envoys_to_start: 3,
        model: { width: Number(args.width), input_size: [28, 28], channels: 1, seed: 1 },
        training: { optimizer: 'adam', learning_rate: 0.001, local_epochs: Number(args.epochs), batch_size: 32, class_weighting: true },
        aggregation: { strategy: 'fedavg', min_envoys: 2 },
        secagg: { enabled: args.secagg },
        audit: { enabled: args.audit, ...(args.audit ? { probe: AUDIT_PROBE } : {}) },
      },
    });
    const logs = join(dir, 'logs');
    (await import('node:fs')).mkdirSync(logs, { recursive: true });
    const director = spawnRole('director', ['director', 'start', '--config', files.director], join(logs, 'director.log'));
    started.push(director);
    await waitForOutput(director, /federation 'pneumonia-demo'/);
    for (const file of files.envoys) {
      const name = file.match(/envoy-(.+)\.yaml$/)![1];
      started.push(spawnRole(name, ['envoy', 'start', '--config', file], join(logs, `${name}.log`)));
    }
    await Promise.all(started.slice(1).map((e) => waitForOutput(e, /registered with the director/)));
    console.log(`director and ${started.length - 1} envoys are up; running ${args.rounds} rounds\n`);

    const config = loadConfigFile(files.experiment, ExperimentSchema);
    const nc = await connectNats(natsUrl, 'secflow-demo');
    console.log(tableHeader());
    const final = await runExperimentRemotely(nc, 'pneumonia-demo', config, {
      onEvent: (e) => {
        if (e.type === 'round' || e.type === 'round_failed') console.log(tableRow(e));
        if (e.type === 'round_failed') console.log(`  ${e.message}`);
      },
    });
    await nc.close();
    if (final.type === 'failed') throw new Error(`experiment failed: ${final.message}`);
    console.log(`\nmetrics: ${join(final.run_dir!, 'metrics.csv')}  TensorBoard: tensorboard --logdir ${join(final.run_dir!, 'tensorboard')}`);
    if (args.audit) await attackProbes(final.run_dir!, files.envoyAudit, dataPath, config.rounds);
    console.log(`final test_auc=${final.test?.roc_auc.toFixed(4)} test_acc=${final.test?.accuracy.toFixed(4)} run=${final.run_dir}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`federation demo failed: ${error.message}\n`);
  process.exit(1);
});
