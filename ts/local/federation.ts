/**
 * A whole federation on this machine for one experiment: a private NATS server, a director and one envoy
 * process per hospital, all talking only through NATS, exactly as in production. Secure by default: the
 * federation is provisioned into `<dir>/kits/` and its server runs the provisioned config (provisioned.ts).
 * Used by `npm run federation`, the leakage audit's sweep and the bench.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema, type ExperimentConfig } from '../core/config/experiment.ts';
import { loadConfigFile } from '../core/config/load.ts';
import { Logger } from '../core/log.ts';
import type { ExperimentEvent } from '../core/messages.ts';
import type { Bus } from '../core/transport/bus.ts';
import { connectBus } from '../core/transport/connection.ts';
import { runExperimentRemotely } from '../experiment/client.ts';
import { size } from '../core/data/dataset.ts';
import { loadPneumoniaMnist } from '../core/data/npz.ts';
import { takeShard } from '../core/data/partition.ts';
import { DEFAULT_PARTITION, writeFederationFiles, type LocalFederationFiles, type LocalFederationSpec } from './federation-files.ts';
import { startLocalNats, type LocalNats } from './nats-server.ts';
import { LOCAL_DIRECTOR, LOCAL_SCIENTIST, provisionLocalFederation } from './provisioned.ts';
import { sharedMachineThreads, spawnRole, waitForOutput, waitForOutputs, type RoleProcess } from './roles.ts';

export interface LocalRunOptions extends Omit<LocalFederationSpec, 'natsUrl'> {
  /** Explicit opt-out: no kits, a plain server (or `natsUrl`), every role `insecure: true`. */
  insecure?: boolean;
  /** Insecure runs only: an existing NATS server; default: start a private one on a free loopback port. */
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

/** The running pieces of a local federation, for callers that drive it themselves (tests, bench). */
export interface LocalFederation {
  nats: LocalNats;
  files: LocalFederationFiles;
  /** Kit folder per participant, or undefined when insecure. */
  kits?: Record<string, string>;
  director: RoleProcess;
  envoys: RoleProcess[];
  /** The data scientist's connection. */
  scientist: Bus;
  /** The director's dashboard address (without its token), when asked for and it started. */
  dashboard?: string;
  stop(): Promise<void>;
}

export interface StartOptions extends LocalRunOptions {
  /** Testing only: a server without subject permissions (misconfigured or shared). */
  withoutPermissions?: boolean;
  /** Testing only: envoys provisioned (kits made, in the roster) but not started, e.g. a hostile participant. */
  idleEnvoys?: string[];
  /**
   * Simulation at scale: the envoys share this many processes (one TensorFlow each), e.g. 1 for 100 envoys on one
   * machine; each envoy keeps its own identity, connection, shard and policy. Default: a process per envoy.
   */
  envoyProcesses?: number;
  /** Testing only: start this envoy with another command (a hostile envoy); undefined: `secflow envoy start`. */
  spawnEnvoy?: (name: string, configFile: string, logFile: string) => RoleProcess | undefined;
  /** Whether the roster records each hospital's shard size as its max_examples (default true). */
  provisionExamples?: boolean;
}

export async function startLocalFederation(o: StartOptions): Promise<LocalFederation> {
  const started: RoleProcess[] = [];
  let nats: LocalNats | undefined;
  let scientist: Bus | undefined;
  const stop = async () => {
    await scientist?.close();
    await Promise.all(started.map((p) => p.stop()));
    await nats?.stop();
  };
  try {
    let kits: Record<string, string> | undefined;
    if (o.insecure) {
      if (!o.natsUrl) nats = await startLocalNats();
    } else {
      if (o.natsUrl) throw new Error('an existing NATS server (--nats) needs --insecure: the secure federation provisions and runs its own');
      const secured = await provisionLocalFederation({
        dir: o.dir, federation: o.federation, envoys: [...o.envoys, ...(o.idleEnvoys ?? [])], withoutPermissions: o.withoutPermissions,
        maxExamples: o.provisionExamples === false ? undefined : shardSizes(o),
      });
      nats = secured.nats;
      kits = secured.provisioned.kits;
    }
    const natsUrl = o.natsUrl ?? nats!.url;
    const files = writeFederationFiles({ ...o, natsUrl }, kits, LOCAL_DIRECTOR);
    const logs = join(o.dir, 'logs');
    mkdirSync(logs, { recursive: true });
    o.say?.(`NATS ${natsUrl}; run folder ${o.dir} (logs/ has each process's output)`);
    o.say?.(kits ? `protection: TLS (mutual, federation CA in ${join(o.dir, 'kits')}), NATS authentication (nkeys, per-identity permissions), signed and sealed messages`
      : 'protection: NONE (--insecure): no TLS, no authentication, no signatures');
    const groups = envoyGroups(o.envoys.length, o.envoyProcesses);
    const threads = sharedMachineThreads(groups.length + 1);
    const director = spawnRole('director', ['director', 'start', '--config', files.director], join(logs, 'director.log'), threads);
    started.push(director);
    await waitForOutput(director, new RegExp(`federation '${o.federation}'`));
    const dashboard = !o.dashboard ? undefined : await dashboardOf(director, o.say);
    const envoys = groups.map((members) => {
      if (members.length === 1) {
        const [i] = members;
        const log = join(logs, `${o.envoys[i]}.log`);
        return o.spawnEnvoy?.(o.envoys[i], files.envoys[i], log) ?? spawnRole(o.envoys[i], ['envoy', 'start', '--config', files.envoys[i]], log, threads);
      }
      const name = `envoys-${o.envoys[members[0]]}-to-${o.envoys[members.at(-1)!]}`;
      return spawnRole(name, ['envoy', 'start', ...members.flatMap((i) => ['--config', files.envoys[i]])], join(logs, `${name}.log`), threads);
    });
    started.push(...envoys);
    await Promise.all(groups.map((members, g) => waitForOutputs(envoys[g],
      members.map((i) => new RegExp(`\\[envoy ${o.envoys[i]}\\] registered with the director`)), o.registrationTimeoutMs)));
    scientist = await connectBus({ url: natsUrl, kit: kits?.[LOCAL_SCIENTIST], insecure: !kits, name: LOCAL_SCIENTIST, federation: o.federation },
      'secflow-local', new Logger('scientist'));
    return { nats: nats!, files, kits, director, envoys, scientist, dashboard, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function runLocalFederation(o: StartOptions): Promise<LocalRun> {
  let federation: LocalFederation | undefined;
  const onSigint = () => void federation?.stop().then(() => process.exit(130));
  process.once('SIGINT', onSigint);
  try {
    federation = await startLocalFederation(o);
    const config = loadConfigFile(federation.files.experiment, ExperimentSchema);
    o.say?.(`director and ${federation.envoys.length} envoys are up; running ${config.rounds} rounds of '${config.name}'`);
    const final = await runExperimentRemotely(federation.scientist, config, { onEvent: o.onEvent, silenceTimeoutMs: o.silenceTimeoutMs });
    return { final, config, files: federation.files };
  } finally {
    process.off('SIGINT', onSigint);
    await federation?.stop();
  }
}

/** Envoy indices per process: contiguous groups, as even as they divide. */
function envoyGroups(count: number, processes = count): number[][] {
  const k = Math.max(1, Math.min(count, processes));
  return Array.from({ length: k }, (_, g) => {
    const from = Math.floor((g * count) / k);
    const to = Math.floor(((g + 1) * count) / k);
    return Array.from({ length: to - from }, (_, j) => from + j);
  });
}

/** The director's dashboard line (it names the address and the access file, never the token). */
async function dashboardOf(director: RoleProcess, say?: (line: string) => void): Promise<string | undefined> {
  const line = await waitForOutput(director, /dashboard at |dashboard could not start/);
  say?.(line.replace(/^.*?\] /, ''));
  return /dashboard at (http:\/\/\S+)/.exec(line)?.[1];
}

/** Each envoy's training share, as its provisioning records it (a hospital declares its dataset when it joins). */
function shardSizes(o: LocalRunOptions): Record<string, number> {
  const train = loadPneumoniaMnist(o.dataPath, 'train', o.trainLimit);
  const partition = o.partition ?? DEFAULT_PARTITION;
  return Object.fromEntries(o.envoys.map((name, index) => [name, size(takeShard(train, { ...partition, num_shards: o.envoys.length, index }))]));
}
