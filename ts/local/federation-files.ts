/**
 * Config files for a federation on one machine: one director.yaml, one envoy.yaml per hospital sharing
 * PneumoniaMNIST by a non-IID partition, and an experiment.yaml. The demo, the tests and the bench write
 * them into their run folder, so what runs is exactly what a user would write by hand. Each role config
 * points at its startup kit (see provisioned.ts), or says `insecure: true` for an explicit opt-out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface LocalFederationSpec {
  dir: string;
  federation: string;
  natsUrl: string;
  dataPath: string;
  envoys: string[];
  partition?: { scheme: 'iid' | 'dirichlet' | 'quantity'; alpha: number; seed: number };
  trainLimit?: number;
  testLimit?: number;
  heartbeat?: { interval_seconds: number; timeout_seconds: number };
  experiment: Record<string, unknown>;
  /** The director's live dashboard on this loopback port (0: any free one), showing these audit reports; default: none. */
  dashboard?: { port: number; auditReports?: string[] };
  /** Every envoy's `device:` (default: none, i.e. auto). */
  device?: 'auto' | 'cpu' | 'gpu';
  /** Every envoy's `privacy:` section (default: none, the protected default policy). */
  privacy?: Record<string, unknown>;
}

export const DEFAULT_PARTITION = { scheme: 'dirichlet', alpha: 1.0, seed: 7 } as const;

/** Kit folder per participant name; absent: every role runs `insecure: true`. */
export type KitFolders = Record<string, string> | undefined;

export interface LocalFederationFiles { director: string; envoys: string[]; experiment: string; workspace: string; envoyAudit: string }

export function writeFederationFiles(spec: LocalFederationSpec, kits: KitFolders, directorName = 'director'): LocalFederationFiles {
  const configs = join(spec.dir, 'configs');
  mkdirSync(configs, { recursive: true });
  const heartbeat = spec.heartbeat ?? { interval_seconds: 2, timeout_seconds: 10 };
  const write = (name: string, value: unknown) => {
    const path = join(configs, name);
    writeFileSync(path, stringify(value));
    return path;
  };
  const trust = (name: string) => (kits ? { kit: kits[name] } : { insecure: true });
  const limit = (n?: number) => (n ? { limit: n } : {});
  const director = write('director.yaml', {
    federation: spec.federation,
    nats: { url: spec.natsUrl },
    ...trust(directorName),
    workspace: join(spec.dir, 'workspace'),
    test_data: { kind: 'pneumoniamnist', path: spec.dataPath, split: 'test', ...limit(spec.testLimit) },
    heartbeat,
    ...(spec.dashboard ? { dashboard: { enabled: true, port: spec.dashboard.port, audit_reports: spec.dashboard.auditReports ?? [] } } : {}),
  });
  const partition = spec.partition ?? DEFAULT_PARTITION;
  const envoys = spec.envoys.map((name, index) => write(`envoy-${name}.yaml`, {
    name,
    federation: spec.federation,
    nats: { url: spec.natsUrl },
    ...trust(name),
    shard: {
      description: `PneumoniaMNIST share ${index + 1}/${spec.envoys.length} (${partition.scheme}${partition.scheme === 'iid' ? '' : `, alpha ${partition.alpha}`})`,
      train: { kind: 'pneumoniamnist', path: spec.dataPath, split: 'train', ...limit(spec.trainLimit) },
      val: { kind: 'pneumoniamnist', path: spec.dataPath, split: 'val' },
      partition: { ...partition, num_shards: spec.envoys.length, index },
    },
    heartbeat,
    ...(spec.device ? { device: spec.device } : {}),
    // Each hospital keeps its own ledger (they share this configs folder, not their privacy budgets).
    privacy: { ...spec.privacy, ledger: join(spec.dir, 'ledgers', `${name}.jsonl`) },
    audit_dir: join(spec.dir, 'envoy-audit', name),
  }));
  const experiment = write('experiment.yaml', spec.experiment);
  return { director, envoys, experiment, workspace: join(spec.dir, 'workspace'), envoyAudit: join(spec.dir, 'envoy-audit') };
}
