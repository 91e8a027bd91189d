/**
 * `secflow provision`: make a federation's identities, add or revoke one later; `secflow nats start`: run
 * the federation's NATS server from its provisioned folder.
 *   secflow provision --config federation.yaml --out kits/
 *   secflow provision add-envoy --kits kits/ --name hospital-d [--max-examples 1200]
 *   secflow provision revoke --kits kits/ --name hospital-b
 *   secflow nats start --kit kits/nats-server
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFile } from '../core/config/load.ts';
import { checkName } from '../core/names.ts';
import { findNatsServer } from '../local/nats-server.ts';
import { FederationSchema } from '../provision/federation-config.ts';
import { SERVER_FILES } from '../provision/nats-config.ts';
import { addEnvoy, provisionFederation, revoke, type Provisioned } from '../provision/provisioner.ts';

function report(p: Provisioned, what: string): void {
  console.log(`${what}: federation '${p.federation}', roster version ${p.rosterVersion}, NATS ${p.natsUrl}`);
  console.log(`  NATS server: ${p.natsServerDir}   (start it: secflow nats start --kit ${p.natsServerDir})`);
  for (const [name, dir] of Object.entries(p.kits)) console.log(`  ${name.padEnd(20)} ${dir}`);
  console.log(`  Keep ${join(p.out, 'provisioner')} (the CA key) with you; copy each other folder, whole, to its participant.`);
}

export function registerProvisionCommands(program: Command): void {
  const provision = program.command('provision')
    .description('make a federation\'s CA, NATS server config and one startup kit per participant, from federation.yaml')
    .option('-c, --config <file>', 'federation.yaml')
    .option('-o, --out <dir>', 'where the kits go', 'kits')
    .action(async (opts) => {
      if (!opts.config) throw new Error('secflow provision needs --config federation.yaml (or a subcommand: add-envoy, revoke)');
      const config = loadConfigFile(opts.config, FederationSchema);
      report(await provisionFederation(config, opts.out, { configDir: dirname(resolve(opts.config)) }), 'provisioned');
    });
  provision.command('add-envoy').description('a new hospital: its kit, a new roster, the server config with its user; nobody else changes')
    .requiredOption('--kits <dir>', 'the folder `secflow provision` wrote')
    .requiredOption('--name <name>', 'the hospital\'s envoy name')
    .option('--max-examples <n>', 'the most training examples it may claim per update', (v) => Number.parseInt(v, 10))
    .action(async (opts) => {
      const p = await addEnvoy(opts.kits, { name: checkName(opts.name, 'envoy name'), ...(opts.maxExamples ? { max_examples: opts.maxExamples } : {}) });
      report(p, `added ${opts.name}`);
      console.log('  Copy the new roster.json to the director\'s kit (it reloads it by itself) and reload the NATS server (SIGHUP).');
    });
  provision.command('revoke').description('take a participant out: the roster marks it revoked, the server config drops its user')
    .requiredOption('--kits <dir>', 'the folder `secflow provision` wrote')
    .requiredOption('--name <name>', 'who to revoke')
    .action(async (opts) => {
      report(await revoke(opts.kits, opts.name), `revoked ${opts.name}`);
      console.log('  Copy the new roster.json to the director\'s kit (it reloads it by itself) and reload the NATS server (SIGHUP).');
    });

  const nats = program.command('nats').description('the federation NATS server');
  nats.command('start').description('run nats-server with the provisioned config of a kits/nats-server folder')
    .requiredOption('--kit <dir>', 'the nats-server folder `secflow provision` wrote')
    .action(async (opts) => {
      const dir = resolve(opts.kit);
      const child = spawn(findNatsServer(), ['-c', join(dir, SERVER_FILES.config)], { cwd: dir, stdio: 'inherit' });
      const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, forward(s));
      await new Promise<void>((res) => child.once('exit', (code) => { process.exitCode = code ?? 0; res(); }));
    });
}
