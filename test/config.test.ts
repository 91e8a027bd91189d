import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { ConfigError, loadConfigFile } from '../ts/core/config/load.ts';
import { loadDirectorConfig } from '../ts/director/start.ts';
import { loadEnvoyConfig } from '../ts/envoy/start.ts';
import { tempDir } from './helpers/paths.ts';

function file(name: string, text: string): string {
  const path = join(tempDir(), name);
  writeFileSync(path, text);
  return path;
}

test('an experiment with defaults fills in the documented values', (t) => {
  const config = loadConfigFile(file('e.yaml', 'name: demo\nrounds: 3\n'), ExperimentSchema);
  t.is(config.model.width, 32);
  t.is(config.training.optimizer, 'adam');
  t.is(config.aggregation.strategy, 'fedavg');
});

test('a mistyped key is an error naming the file and the key', (t) => {
  const path = file('e.yaml', 'name: demo\nrounds: 3\ntraining:\n  learnig_rate: 0.1\n');
  const error = t.throws(() => loadConfigFile(path, ExperimentSchema));
  t.true(error instanceof ConfigError);
  t.true(error!.message.includes(path));
  t.regex(error!.message, /training: .*'learnig_rate'/);
});

test('a wrong value type and a bad enum are named', (t) => {
  const error = t.throws(() => loadConfigFile(file('e.yaml', 'name: demo\nrounds: three\ntraining: {optimizer: rmsprop}\n'), ExperimentSchema));
  t.regex(error!.message, /rounds: /);
  t.regex(error!.message, /training\.optimizer: /);
});

test('invalid YAML and a missing file are reported as such', (t) => {
  t.regex(t.throws(() => loadConfigFile(file('e.yaml', 'name: [unclosed\n'), ExperimentSchema))!.message, /not valid YAML/);
  t.regex(t.throws(() => loadConfigFile('/nonexistent/e.yaml', ExperimentSchema))!.message, /cannot read config \/nonexistent\/e\.yaml: ENOENT/);
});

test('data paths in director.yaml and envoy.yaml are relative to the file', (t) => {
  const dir = tempDir();
  const d = join(dir, 'director.yaml');
  writeFileSync(d, 'federation: f\ninsecure: true\ntest_data: {kind: pneumoniamnist, path: data/p.npz, split: test}\nworkspace: out\n');
  const director = loadDirectorConfig(d);
  t.is(director.test_data?.kind === 'pneumoniamnist' && director.test_data.path, join(dir, 'data/p.npz'));
  t.is(director.workspace, join(dir, 'out'));
  const e = join(dir, 'envoy.yaml');
  writeFileSync(e, 'name: a\nfederation: f\ninsecure: true\nshard:\n  train: {kind: xray_folder, root: xr}\n');
  const envoy = loadEnvoyConfig(e);
  t.is(envoy.shard.train.kind === 'xray_folder' && envoy.shard.train.root, join(dir, 'xr'));
});

test('a partition index outside the shard count is refused', (t) => {
  const e = file('envoy.yaml', 'name: a\nfederation: f\ninsecure: true\nshard:\n  train: {kind: pneumoniamnist, path: p.npz, split: train}\n  partition: {scheme: iid, num_shards: 2, index: 2}\n');
  t.regex(t.throws(() => loadEnvoyConfig(e))!.message, /partition.index must be below num_shards/);
});

test('a robust strategy needs several updates: with secure aggregation, only over sub-cohort sums', (t) => {
  const error = t.throws(() => loadConfigFile(file('e.yaml', 'name: demo\nrounds: 1\naggregation: {strategy: median}\nsecagg: {enabled: true}\n'), ExperimentSchema));
  t.regex(error!.message, /aggregation\.strategy: median needs several updates, and one secure sum hides them: .*secagg\.sub_cohort_size/);
  const ok = loadConfigFile(file('e2.yaml', 'name: demo\nrounds: 1\naggregation: {strategy: median}\nsecagg: {enabled: true, sub_cohort_size: 3}\n'), ExperimentSchema);
  t.is(ok.secagg.sub_cohort_size, 3);
  t.regex(t.throws(() => loadConfigFile(file('e3.yaml', 'name: demo\nrounds: 1\nsecagg: {sub_cohort_size: 1}\n'), ExperimentSchema))!.message, /a sub-cohort of 1 would be one envoy's update/);
});
