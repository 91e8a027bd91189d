import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnvoyConfig } from '../ts/envoy/start.ts';
import { loadShard } from '../ts/envoy/shard.ts';
import { PNEUMONIAMNIST, tempDir, XRAY_SAMPLES } from './helpers/paths.ts';

test("an envoy's own X-ray folder becomes its shard, described for the director", (t) => {
  const file = join(tempDir(), 'envoy.yaml');
  writeFileSync(file, `name: hospital-x\nfederation: f\ninsecure: true\nshard:\n  description: full-size JPEGs\n  train: {kind: xray_folder, root: ${XRAY_SAMPLES}, image_size: [28, 28]}\n`);
  const config = loadEnvoyConfig(file);
  const shard = loadShard(config.name, config.shard);
  t.is(shard.descriptor.envoy, 'hospital-x');
  t.deepEqual(shard.descriptor.sample_shape, [28, 28, 1]);
  t.deepEqual(shard.descriptor.class_names, ['NORMAL', 'PNEUMONIA']);
  t.deepEqual(shard.descriptor.class_counts.train, [0, 9]);
  t.is(shard.descriptor.counts.val, 0);
});

test('a partitioned PneumoniaMNIST shard keeps one share of train and of val', (t) => {
  const shares = [0, 1, 2].map((index) => loadShard(`e${index}`, {
    description: '',
    train: { kind: 'pneumoniamnist', path: PNEUMONIAMNIST, split: 'train' },
    val: { kind: 'pneumoniamnist', path: PNEUMONIAMNIST, split: 'val' },
    partition: { scheme: 'dirichlet', num_shards: 3, index, alpha: 1, seed: 7 },
  }).descriptor);
  t.is(shares.reduce((n, d) => n + d.counts.train, 0), 4707);
  t.is(shares.reduce((n, d) => n + d.counts.val, 0), 524);
  t.true(shares.every((d) => d.description.includes('dirichlet shard')));
});

test('validation samples of another size than the training samples are refused', (t) => {
  const error = t.throws(() => loadShard('e', {
    description: '',
    train: { kind: 'pneumoniamnist', path: PNEUMONIAMNIST, split: 'val' },
    val: { kind: 'xray_folder', root: XRAY_SAMPLES, classes: ['NORMAL', 'PNEUMONIA'], image_size: [32, 32], channels: 1 },
  }));
  t.regex(error!.message, /validation samples are 32x32x1, training samples 28x28x1/);
});
