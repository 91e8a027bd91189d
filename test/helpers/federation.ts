/**
 * A real federation for integration tests: a provisioned nats-server (mutual TLS, nkeys, per-identity
 * permissions), a director process and envoy processes, each with its startup kit, exactly as `npm run
 * federation` runs them. `insecure: true` runs the explicit opt-out instead.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema, type ExperimentConfig } from '../../ts/core/config/experiment.ts';
import { loadConfigFile } from '../../ts/core/config/load.ts';
import type { z } from 'zod';
import { Logger } from '../../ts/core/log.ts';
import { kinds, type ExperimentEvent, type StatusReplySchema } from '../../ts/core/messages.ts';
import { subjects } from '../../ts/core/subjects.ts';
import type { Bus } from '../../ts/core/transport/bus.ts';
import { connectBus } from '../../ts/core/transport/connection.ts';
import { runExperimentRemotely } from '../../ts/experiment/client.ts';
import { startLocalFederation, type LocalFederation } from '../../ts/local/federation.ts';
import type { LocalFederationFiles } from '../../ts/local/federation-files.ts';
import type { LocalNats } from '../../ts/local/nats-server.ts';
import { spawnRole, waitForOutput, type RoleProcess } from '../../ts/local/roles.ts';
import { PNEUMONIAMNIST, tempDir } from './paths.ts';

export interface TestFederation {
  dir: string;
  nats: LocalNats;
  /** The data scientist's bus (kit `scientist`). */
  scientist: Bus;
  files: LocalFederationFiles;
  /** Kit folder per participant (undefined when insecure). */
  kits?: Record<string, string>;
  director: RoleProcess;
  envoys: Map<string, RoleProcess>;
  config: ExperimentConfig;
  /** The dashboard's address (without its token), with `dashboard: true`. */
  dashboard?: string;
  startDirector(): Promise<RoleProcess>;
  run(onEvent?: (e: ExperimentEvent) => void, config?: ExperimentConfig): Promise<{ final: ExperimentEvent; events: ExperimentEvent[] }>;
  runDir(experiment?: string): string;
  log(name: string): string;
  stop(): Promise<void>;
  /** Connects as a provisioned participant (its kit), e.g. to act as a hostile envoy. */
  connectAs(name: string): Promise<Bus>;
  /** The director's status, as the data scientist sees it. */
  status(): Promise<z.output<typeof StatusReplySchema>>;
  /** Starts an envoy again (after a kill), with its own config, kit and ledger; resolves once it registered. */
  restartEnvoy(name: string): Promise<RoleProcess>;
  /** The envoy's privacy ledger file. */
  ledgerOf(name: string): string;
}

export interface TestFederationOptions {
  envoys: string[];
  /**
   * Merged over PLAIN (no secure aggregation, no PRECODE, batch statistics), the setting most tests were
   * written for; `protectedDefaults: true` merges over nothing, so the experiment's own defaults apply.
   */
  experiment: Record<string, unknown>;
  protectedDefaults?: boolean;
  /** Every envoy's privacy policy; default `preset: open` (a test federation, not patient data). */
  privacy?: Record<string, unknown>;
  trainLimit?: number;
  testLimit?: number;
  insecure?: boolean;
  /** A server without subject permissions (misconfigured or shared): the signatures alone must hold. */
  withoutPermissions?: boolean;
  /** Provisioned envoys that are not started (a hostile participant's kit, say). */
  idleEnvoys?: string[];
  /** Envoys share this many processes (simulation at scale); default one each. */
  envoyProcesses?: number;
  /** Heartbeats (default: every 0.5 s, silent after 3 s, so dropout tests are quick). */
  heartbeat?: { interval_seconds: number; timeout_seconds: number };
  /** Every envoy's device (auto, cpu or gpu). */
  device?: 'auto' | 'cpu' | 'gpu';
  /** The director serves its dashboard (on any free loopback port), with these audit report folders. */
  dashboard?: { auditReports?: string[] };
}

export async function startTestFederation(options: TestFederationOptions): Promise<TestFederation> {
  const dir = tempDir('secflow-fed-');
  const local: LocalFederation = await startLocalFederation({
    dir, federation: 'testfed', dataPath: PNEUMONIAMNIST, envoys: options.envoys, insecure: options.insecure, withoutPermissions: options.withoutPermissions, idleEnvoys: options.idleEnvoys,
    partition: { scheme: 'iid', alpha: 1, seed: 1 }, trainLimit: options.trainLimit ?? 300, testLimit: options.testLimit ?? 200,
    heartbeat: options.heartbeat ?? { interval_seconds: 0.5, timeout_seconds: 3 },
    experiment: deepMerge({ start_timeout_seconds: 60, ...(options.protectedDefaults ? {} : PLAIN) }, options.experiment),
    privacy: options.privacy ?? { preset: 'open' }, envoyProcesses: options.envoyProcesses, device: options.device, dashboard: options.dashboard && { port: 0, auditReports: options.dashboard.auditReports },
  });
  const logs = join(dir, 'logs');
  const envoys = new Map(local.envoys.map((e) => [e.name, e]));
  const fed: TestFederation = {
    dir, nats: local.nats, files: local.files, envoys, kits: local.kits, scientist: local.scientist, director: local.director, dashboard: local.dashboard,
    config: loadConfigFile(local.files.experiment, ExperimentSchema),
    async startDirector() {
      fed.director = spawnRole('director', ['director', 'start', '--config', local.files.director], join(logs, 'director.log'));
      await waitForOutput(fed.director, /federation 'testfed'/);
      return fed.director;
    },
    async run(onEvent, config = fed.config) {
      const events: ExperimentEvent[] = [];
      const final = await runExperimentRemotely(fed.scientist, config, {
        onEvent: (e) => { events.push(e); onEvent?.(e); }, silenceTimeoutMs: 180_000,
      });
      return { final, events };
    },
    runDir: (experiment = fed.config.name) => join(local.files.workspace, 'testfed', experiment),
    log: (name) => readFileSync(join(logs, `${name}.log`), 'utf8'),
    connectAs: (name) => connectBus({ url: local.nats.url, kit: local.kits![name] }, `test-${name}`, new Logger(`test-${name}`, 'error')),
    status: () => fed.scientist.request(kinds.status, subjects.status('testfed', 'scientist'), 'director', {}, 10_000),
    async restartEnvoy(name) {
      const file = local.files.envoys.find((f) => f.endsWith(`envoy-${name}.yaml`))!;
      const envoy = spawnRole(name, ['envoy', 'start', '--config', file], join(logs, `${name}.log`));
      envoys.set(name, envoy);
      await waitForOutput(envoy, /registered with the director/);
      return envoy;
    },
    ledgerOf: (name) => join(dir, 'ledgers', `${name}.jsonl`),
    async stop() {
      // The director or envoys may have been restarted: stop the current processes, then what the federation started.
      await Promise.all([fed.director, ...envoys.values()].map((p) => p.stop()));
      await local.stop();
    },
  };
  return fed;
}

/** The unprotected experiment setting the older tests exercise: each test that wants a defense says so. */
export const PLAIN = {
  secagg: { enabled: false }, model: { precode: { enabled: false } }, training: { batch_norm_statistics: 'batch' },
};

/** Objects merged key by key (arrays and values from `b` win). */
export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
      ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export function readJsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}
