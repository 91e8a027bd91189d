/**
 * secflow: one CLI for every role.
 *   secflow director start --config director.yaml
 *   secflow envoy start --config envoy.yaml
 *   secflow experiment run --config experiment.yaml --director director.yaml   (or --nats URL --federation NAME)
 *   secflow status --director director.yaml
 *   secflow data fetch [--dest data/pneumoniamnist.npz]
 */
import { Command } from 'commander';
import { ExperimentSchema } from '../core/config/experiment.ts';
import { loadConfigFile } from '../core/config/load.ts';
import { fetchPneumoniaMnist } from '../core/data/fetch.ts';
import { Logger } from '../core/log.ts';
import { StatusReplySchema } from '../core/messages.ts';
import { subjects } from '../core/subjects.ts';
import { connectNats } from '../core/transport/connection.ts';
import { request } from '../core/transport/rpc.ts';
import { z } from 'zod';
import { tableHeader, tableRow } from '../experiment/table.ts';
import { registerLeakageCommands } from './leakage.ts';

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
    const d = await startDirector(loadDirectorConfig(opts.config));
    await untilSignal(() => d.stop());
  });

const envoy = program.command('envoy').description('a hospital-side trainer holding local data');
envoy.command('start').description('start an envoy and register it with the director')
  .requiredOption('-c, --config <file>', 'envoy.yaml')
  .action(async (opts) => {
    const { loadEnvoyConfig, startEnvoy } = await roles.envoy();
    const e = await startEnvoy(loadEnvoyConfig(opts.config));
    await untilSignal(() => e.stop());
  });

interface Target { director?: string; nats?: string; federation?: string }
async function resolveTarget(opts: Target): Promise<{ url: string; federation: string }> {
  if (opts.director) {
    const d = (await roles.director()).loadDirectorConfig(opts.director);
    return { url: opts.nats ?? d.nats.url, federation: opts.federation ?? d.federation };
  }
  const url = opts.nats ?? process.env.SECFLOW_NATS;
  const federation = opts.federation ?? process.env.SECFLOW_FEDERATION;
  if (!url || !federation) throw new Error('say which federation: --director director.yaml, or --nats URL --federation NAME');
  return { url, federation };
}
const withTarget = (cmd: Command) => cmd
  .option('-d, --director <file>', 'the director.yaml of the federation (gives its NATS URL and name)')
  .option('--nats <url>', 'NATS server URL (or SECFLOW_NATS)')
  .option('--federation <name>', 'federation name (or SECFLOW_FEDERATION)');

const experiment = program.command('experiment').description('submit and follow experiments');
withTarget(experiment.command('run').description('submit an experiment to a running director and follow it to the end')
  .requiredOption('-c, --config <file>', 'experiment.yaml'))
  .action(async (opts) => {
    const config = loadConfigFile(opts.config, ExperimentSchema);
    const { url, federation } = await resolveTarget(opts);
    const nc = await connectNats(url, 'secflow-experiment');
    try {
      console.log(tableHeader());
      const { runExperimentRemotely } = await roles.client();
      const final = await runExperimentRemotely(nc, federation, config, {
        onEvent: (e) => {
          if (e.type === 'round' || e.type === 'round_failed') console.log(tableRow(e));
          if (e.type === 'round_failed' && e.message) console.log(`  ${e.message}`);
        },
      });
      if (final.type === 'failed') throw new Error(`experiment '${config.name}' failed: ${final.message}`);
      console.log(`final test_auc=${final.test?.roc_auc?.toFixed(4) ?? 'n/a'} test_acc=${final.test?.accuracy.toFixed(4) ?? 'n/a'} run=${final.run_dir}`);
    } finally {
      await nc.close();
    }
  });

withTarget(program.command('status').description('envoys and experiments of a running federation'))
  .action(async (opts) => {
    const { url, federation } = await resolveTarget(opts);
    const nc = await connectNats(url, 'secflow-status');
    try {
      const s = await request(nc, subjects.status(federation), z.object({}), {}, StatusReplySchema, 5000, 'status request');
      console.log(`federation ${s.federation}: running ${s.running ?? 'nothing'}; queued ${s.queued.join(', ') || 'nothing'}`);
      for (const e of s.envoys) {
        console.log(`  ${e.name.padEnd(16)} ${e.alive ? 'alive' : 'gone '} ${e.busy ? 'busy' : 'idle'}  ${e.descriptor.counts.train} train / ${e.descriptor.counts.val} val  ${e.descriptor.description}`);
      }
    } finally {
      await nc.close();
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

registerLeakageCommands(program);

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
