import { DirectorSchema, type DirectorConfig } from '../core/config/director.ts';
import { loadConfigFile, resolveFrom } from '../core/config/load.ts';
import { resolveSourcePaths } from '../core/config/data-source.ts';
import { loadDataSource } from '../core/data/load.ts';
import { Director } from './director.ts';

export function loadDirectorConfig(path: string): DirectorConfig {
  const config = loadConfigFile(path, DirectorSchema);
  return {
    ...config,
    workspace: resolveFrom(path, config.workspace),
    test_data: config.test_data && resolveSourcePaths(config.test_data, path),
    dashboard: { ...config.dashboard, audit_reports: config.dashboard.audit_reports.map((dir) => resolveFrom(path, dir)) },
  };
}

export async function startDirector(config: DirectorConfig): Promise<Director> {
  const testSet = config.test_data ? loadDataSource(config.test_data) : undefined;
  const director = new Director(config, testSet);
  await director.start();
  return director;
}
