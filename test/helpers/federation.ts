/** A real federation for integration tests: nats-server, a director process and envoy processes. */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema, type ExperimentConfig } from '../../ts/core/config/experiment.ts';
import { loadConfigFile } from '../../ts/core/config/load.ts';
import type { ExperimentEvent } from '../../ts/core/messages.ts';
import { connectNats, type NatsConnection } from '../../ts/core/transport/connection.ts';
import { runExperimentRemotely } from '../../ts/experiment/client.ts';
import { writeFederationFiles, type LocalFederationFiles } from '../../ts/local/federation-files.ts';
import { startLocalNats, type LocalNats } from '../../ts/local/nats-server.ts';
import { spawnRole, waitForOutput, type RoleProcess } from '../../ts/local/roles.ts';
import { PNEUMONIAMNIST, tempDir } from './paths.ts';

export interface TestFederation {
  dir: string;
  nats: LocalNats;
  nc: NatsConnection;
  files: LocalFederationFiles;
  director: RoleProcess;
  envoys: Map<string, RoleProcess>;
  config: ExperimentConfig;
  startDirector(): Promise<RoleProcess>;
  run(onEvent?: (e: ExperimentEvent) => void): Promise<{ final: ExperimentEvent; events: ExperimentEvent[] }>;
  runDir(): string;
  log(name: string): string;
  stop(): Promise<void>;
}

export interface TestFederationOptions {
  envoys: string[];
  experiment: Record<string, unknown>;
  trainLimit?: number;
  testLimit?: number;
}

export async function startTestFederation(options: TestFederationOptions): Promise<TestFederation> {
  const dir = tempDir('secflow-fed-');
  const nats = await startLocalNats();
  const files = writeFederationFiles({
    dir, federation: 'testfed', natsUrl: nats.url, dataPath: PNEUMONIAMNIST, envoys: options.envoys,
    partition: { scheme: 'iid', alpha: 1, seed: 1 }, trainLimit: options.trainLimit ?? 300, testLimit: options.testLimit ?? 200,
    heartbeat: { interval_seconds: 0.5, timeout_seconds: 3 },
    experiment: { start_timeout_seconds: 60, ...options.experiment },
  });
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const envoys = new Map<string, RoleProcess>();
  const fed: TestFederation = {
    dir, nats, files, envoys,
    nc: await connectNats(nats.url, 'test-client'),
    director: undefined as unknown as RoleProcess,
    config: loadConfigFile(files.experiment, ExperimentSchema),
    async startDirector() {
      fed.director = spawnRole('director', ['director', 'start', '--config', files.director], join(logs, 'director.log'));
      await waitForOutput(fed.director, /federation 'testfed'/);
      return fed.director;
    },
    async run(onEvent) {
      const events: ExperimentEvent[] = [];
      const final = await runExperimentRemotely(fed.nc, 'testfed', fed.config, {
        onEvent: (e) => { events.push(e); onEvent?.(e); }, silenceTimeoutMs: 180_000,
      });
      return { final, events };
    },
    runDir: () => join(files.workspace, 'testfed', fed.config.name),
    log: (name) => readFileSync(join(logs, `${name}.log`), 'utf8'),
    async stop() {
      await fed.nc.close().catch(() => undefined);
      await Promise.all([...envoys.values(), fed.director].filter(Boolean).map((p) => p.stop()));
      await nats.stop();
    },
  };
  await fed.startDirector();
  for (const file of files.envoys) {
    const name = /envoy-(.+)\.yaml$/.exec(file)![1];
    envoys.set(name, spawnRole(name, ['envoy', 'start', '--config', file], join(logs, `${name}.log`)));
  }
  await Promise.all([...envoys.values()].map((e) => waitForOutput(e, /registered with the director/)));
  return fed;
}

export function readJsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}
