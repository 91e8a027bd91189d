import { EnvoySchema, type EnvoyConfig } from '../core/config/envoy.ts';
import { loadConfigFile, resolveFrom } from '../core/config/load.ts';
import { resolveSourcePaths } from '../core/config/data-source.ts';
import { Envoy } from './envoy.ts';
import { loadShard } from './shard.ts';

export function loadEnvoyConfig(path: string): EnvoyConfig {
  const config = loadConfigFile(path, EnvoySchema);
  const shard = config.shard;
  return {
    ...config,
    audit_dir: resolveFrom(path, config.audit_dir),
    privacy: { ...config.privacy, ledger: resolveFrom(path, config.privacy.ledger) },
    shard: { ...shard, train: resolveSourcePaths(shard.train, path), val: shard.val && resolveSourcePaths(shard.val, path) },
  };
}

export async function startEnvoy(config: EnvoyConfig): Promise<Envoy> {
  const envoy = new Envoy(config, loadShard(config.name, config.shard));
  await envoy.start();
  return envoy;
}
