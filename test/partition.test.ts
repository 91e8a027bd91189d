import test from 'ava';
import { partitionIndices } from '../ts/core/data/partition.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train');

function pneumoniaShare(shard: number[]): number {
  return shard.filter((i) => train.labels[i] === 1).length / shard.length;
}

for (const scheme of ['iid', 'dirichlet', 'quantity'] as const) {
  test(`${scheme}: every example lands in exactly one non-empty shard, the same for the same seed`, (t) => {
    const p = { scheme, num_shards: 5, alpha: 0.5, seed: 3 };
    const shards = partitionIndices(train.labels, 2, p);
    const all = shards.flat().sort((a, b) => a - b);
    t.is(all.length, train.labels.length);
    t.true(all.every((v, i) => v === i), 'no duplicates, nothing lost');
    t.true(shards.every((s) => s.length > 0));
    t.deepEqual(partitionIndices(train.labels, 2, p), shards);
    t.notDeepEqual(partitionIndices(train.labels, 2, { ...p, seed: 4 }), shards);
  });
}

test('iid shards keep the global class mix and equal sizes', (t) => {
  const shards = partitionIndices(train.labels, 2, { scheme: 'iid', num_shards: 3, alpha: 1, seed: 1 });
  const global = pneumoniaShare([...Array(train.labels.length).keys()]);
  for (const s of shards) {
    t.true(Math.abs(pneumoniaShare(s) - global) < 0.03);
    t.true(Math.abs(s.length - train.labels.length / 3) <= 1);
  }
});

test('Dirichlet label skew spreads class mixes far more than IID', (t) => {
  const spread = (scheme: 'iid' | 'dirichlet') => {
    const shares = partitionIndices(train.labels, 2, { scheme, num_shards: 4, alpha: 0.3, seed: 11 }).map(pneumoniaShare);
    return Math.max(...shares) - Math.min(...shares);
  };
  t.true(spread('dirichlet') > 5 * spread('iid'), `dirichlet ${spread('dirichlet')}, iid ${spread('iid')}`);
});

test('quantity skew varies shard sizes while keeping class mixes', (t) => {
  const shards = partitionIndices(train.labels, 2, { scheme: 'quantity', num_shards: 4, alpha: 0.5, seed: 5 });
  const sizes = shards.map((s) => s.length);
  t.true(Math.max(...sizes) > 2 * Math.min(...sizes), `sizes ${sizes}`);
});
