/**
 * secflow: one CLI for every role.
 *   secflow director start --config director.yaml   (with `dashboard: {enabled: true}`: a live web dashboard)
 *   secflow envoy start --config envoy.yaml
 *   secflow experiment run --config experiment.yaml --kit kits/scientist
 *   secflow status --kit kits/scientist
 *   secflow provision --config federation.yaml --out kits/   (add-envoy, revoke)
 *   secflow nats start --kit kits/nats-server
 *   secflow data fetch [--dest data/pneumoniamnist.npz]
 */
import { Command } from 'commander';
import type { DirectorConfig } from '../core/config/director.ts';
import { EnvoySchema } from '../core/config/envoy.ts';
import { ExperimentSchema } from '../core/config/experiment.ts';
import { loadConfigFile } from '../core/config/load.ts';
import { fetchPneumoniaMnist } from '../core/data/fetch.ts';
import { Logger } from '../core/log.ts';
import { kinds } from '../core/messages.ts';
import { subjects } from '../core/subjects.ts';
import { connectBus } from '../core/transport/connection.ts';
import type { Director } from '../director/director.ts';
import type { Envoy } from '../envoy/envoy.ts';
import { finalLine, tableHeader, tableRow } from '../experiment/table.ts';
import { registerLeakageCommands } from './leakage.ts';
import { resolveParticipant, withTarget } from './participant.ts';
import { registerPredictCommand } from './predict.ts';
import { registerProvisionCommands } from './provision.ts';

// Roles load TensorFlow; import them only when a command needs them, so `--help` answers at once.
const roles = {
  director: () => import('../director/start.ts'),
  envoy: () => import('../envoy/start.ts'),
  client: () => import('../experiment/client.ts'),
};

const program = new Command('secflow')
  .description('FL-SecFlow: federated pneumonia detection on chest X-rays, with secure aggregation and a leakage lab')
  .showHelpAfterError();

const director = program.command('director').description('the federation coordinator');
director.command('start').description('start a long-lived director for one federation')
  .requiredOption('-c, --config <file>', 'director.yaml')
  .action(async (opts) => {
    const { loadDirectorConfig, startDirector } = await roles.director();
    const config = loadDirectorConfig(opts.config);
    const d = await startDirector(config);
    const dashboard = config.dashboard.enabled ? await startDirectorDashboard(config, d) : undefined;
    await untilSignal(async () => { await dashboard?.close(); await d.stop(); });
  });

const envoy = program.command('envoy').description('a hospital-side trainer holding local data');
envoy.command('ledger').description("this hospital's privacy ledger: every update it released, and the epsilon spent")
  .requiredOption('-c, --config <file>', 'envoy.yaml')
  .action(async (opts) => {
    const { loadEnvoyConfig } = await roles.envoy();
    const { printLedger } = await import('../envoy/policy/print.ts');
    printLedger(loadEnvoyConfig(opts.config));
  });
envoy.command('start').description('start an envoy and register it with the director; several --config: a simulation, one process and one TensorFlow for many envoys')
  .requiredOption('-c, --config <file...>', 'envoy.yaml (repeat for several envoys in this process)')
  .action(async (opts: { config: string[] }) => {
    // The device decides which TensorFlow binding loads, so it is read before anything imports TensorFlow.
    const devices = new Set(opts.config.map((file) => loadConfigFile(file, EnvoySchema).device));
    if (devices.size > 1) throw new Error(`envoys in one process share one TensorFlow: their device: keys differ (${[...devices].join(', ')})`);
    process.env.SECFLOW_DEVICE ??= [...devices][0];
    const { loadEnvoyConfig, startEnvoy } = await roles.envoy();
    // Each envoy keeps its own identity, kit, NATS connection, shard, policy and ledger; only the process is shared.
    const envoys: Envoy[] = [];
    for (const file of opts.config) envoys.push(await startEnvoy(loadEnvoyConfig(file)));
    await untilSignal(async () => { await Promise.all(envoys.map((e) => e.stop())); });
  });

const experiment = program.command('experiment').description('submit and follow experiments');
withTarget(experiment.command('run').description('submit an experiment to a running director and follow it to the end')
  .requiredOption('-c, --config <file>', 'experiment.yaml'))
  .action(async (opts) => {
    const config = loadConfigFile(opts.config, ExperimentSchema);
    const bus = await connectBus(resolveParticipant(opts), 'secflow-experiment', new Logger('scientist'));
    try {
      console.log(tableHeader());
      const { runExperimentRemotely } = await roles.client();
      const final = await runExperimentRemotely(bus, config, {
        onEvent: (e) => {
          if (e.type === 'round' || e.type === 'round_failed') console.log(tableRow(e));
          if (e.type === 'round_failed' && e.message) console.log(`  ${e.message}`);
        },
      });
      if (final.type === 'failed') throw new Error(`experiment '${config.name}' failed: ${final.message}`);
      console.log(finalLine(final));
    } finally {
      await bus.close();
    }
  });

withTarget(program.command('status').description('envoys and experiments of a running federation'))
  .action(async (opts) => {
    const bus = await connectBus(resolveParticipant(opts), 'secflow-status', new Logger('scientist'));
    try {
      const s = await bus.request(kinds.status, subjects.status(bus.federation, bus.self), bus.trust.director(), {}, 5000);
      console.log(`federation ${s.federation}: running ${s.running ?? 'nothing'}; queued ${s.queued.join(', ') || 'nothing'}`);
      console.log(`  protection: ${s.protection}`);
      for (const e of s.envoys) {
        console.log(`  ${e.name.padEnd(16)} ${e.alive ? 'alive' : 'gone '} ${e.busy ? 'busy' : 'idle'}  ${e.descriptor.counts.train} train / ${e.descriptor.counts.val} val  ${e.descriptor.description}`);
        if (e.refused_tasks) console.log(`  ${''.padEnd(16)} refused ${e.refused_tasks} task(s) by its privacy policy; last: ${e.last_refusal}`);
      }
      if (s.refused.length) console.log('  refused messages (sender, reason, count):');
      for (const r of s.refused) console.log(`    ${r.sender.padEnd(28)} ${r.reason.padEnd(32)} ${r.count}`);
    } finally {
      await bus.close();
    }
  });

const data = program.command('data').description('datasets');
data.command('fetch').description("download MedMNIST's official PneumoniaMNIST file and verify its MD5")
  .option('--dest <file>', 'where to save it', 'data/pneumoniamnist.npz')
  .option('--url <url>', 'download from another mirror')
  .option('--md5 <hex>', 'expected MD5 for another mirror')
  .option('--force', 'download even if the file exists')
  .action(async (opts) => {
    await fetchPneumoniaMnist({ dest: opts.dest, url: opts.url, md5: opts.md5, force: opts.force, log: new Logger('data') });
  });

registerProvisionCommands(program);
registerLeakageCommands(program);
registerPredictCommand(program);

/** The dashboard is a window on the federation, not part of it: if it cannot start, the director goes on without it. */
async function startDirectorDashboard(config: DirectorConfig, d: Director) {
  const log = new Logger('dashboard');
  try {
    const { startDashboard } = await import('../dashboard/server.ts');
    const dashboard = await startDashboard(config.dashboard, d, { secure: d.secure });
    log.info(`dashboard at ${dashboard.url}${dashboard.accessFile ? ` (open the address with its access token, in ${dashboard.accessFile})` : ' (no access token: insecure federation)'}`);
    return dashboard;
  } catch (error) {
    log.error(`the dashboard could not start on ${config.dashboard.host}:${config.dashboard.port}: ${(error as Error).message}; the director runs without it`);
    return undefined;
  }
}

async function untilSignal(stop: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await stop();
  process.exit(0);
}

program.parseAsync().catch((error: Error) => {
  process.stderr.write(`secflow: ${error.message}\n`);
  process.exit(1);
});
