/**
 * A whole federation on this machine for one experiment: a private NATS server (unless given one), a
 * director and one envoy process per hospital, all talking only through NATS, exactly as in production.
 * Used by `npm run federation` and by the leakage audit's sweep.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema, type ExperimentConfig } from '../core/config/experiment.ts';
import { loadConfigFile } from '../core/config/load.ts';
import type { ExperimentEvent } from '../core/messages.ts';
import { connectNats } from '../core/transport/connection.ts';
import { runExperimentRemotely } from '../experiment/client.ts';
import { writeFederationFiles, type LocalFederationFiles, type LocalFederationSpec } from './federation-files.ts';
import { startLocalNats, type LocalNats } from './nats-server.ts';
import { spawnRole, waitForOutput, type RoleProcess } from './roles.ts';

export interface LocalRunOptions extends Omit<LocalFederationSpec, 'natsUrl'> {
  /** An existing NATS server; default: start a private one on a free loopback port. */
  natsUrl?: string;
  onEvent?: (event: ExperimentEvent) => void;
  /** How long envoys may take to register, and the director to stay silent (loaded machines need more). */
  registrationTimeoutMs?: number;
  silenceTimeoutMs?: number;
  /** Progress lines for a person watching (default: none). */
  say?: (line: string) => void;
}

export interface LocalRun {
  final: ExperimentEvent;
  config: ExperimentConfig;
  files: LocalFederationFiles;
}

export async function runLocalFederation(o: LocalRunOptions): Promise<LocalRun> {
  const started: RoleProcess[] = [];
  let nats: LocalNats | undefined;
  const cleanup = async () => {
    await Promise.all(started.map((p) => p.stop()));
    await nats?.stop();
  };
  const onSigint = () => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSigint);
  try {
    const natsUrl = o.natsUrl ?? (nats = await startLocalNats()).url;
    const files = writeFederationFiles({ ...o, natsUrl });
    const logs = join(o.dir, 'logs');
    mkdirSync(logs, { recursive: true });
    o.say?.(`NATS ${natsUrl}; run folder ${o.dir} (logs/ has each process's output)`);
    const director = spawnRole('director', ['director', 'start', '--config', files.director], join(logs, 'director.log'));
    started.push(director);
    await waitForOutput(director, new RegExp(`federation '${o.federation}'`));
    for (const [i, file] of files.envoys.entries()) {
      started.push(spawnRole(o.envoys[i], ['envoy', 'start', '--config', file], join(logs, `${o.envoys[i]}.log`)));
    }
    await Promise.all(started.slice(1).map((e) => waitForOutput(e, /registered with the director/, o.registrationTimeoutMs)));
    const config = loadConfigFile(files.experiment, ExperimentSchema);
    o.say?.(`director and ${started.length - 1} envoys are up; running ${config.rounds} rounds of '${config.name}'`);
    const nc = await connectNats(natsUrl, 'secflow-local');
    try {
      const final = await runExperimentRemotely(nc, o.federation, config, { onEvent: o.onEvent, silenceTimeoutMs: o.silenceTimeoutMs });
      return { final, config, files };
    } finally {
      await nc.close();
    }
  } finally {
    process.off('SIGINT', onSigint);
    await cleanup();
  }
}
