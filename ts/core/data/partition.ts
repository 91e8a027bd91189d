/**
 * Splitting one dataset across envoys for demos and experiments: IID, label skew by Dirichlet(alpha), and
 * quantity skew (shard sizes drawn from Dirichlet(alpha), labels IID). Deterministic for a given seed, and
 * every shard index sees the same global split, so envoys started separately agree on who holds what.
 */
import type { Partition } from '../config/data-source.ts';
import { subset, type ImageDataset } from './dataset.ts';
import { SeededRandom } from './rng.ts';

export function partitionIndices(labels: Int32Array, numClasses: number, p: Omit<Partition, 'index'>): number[][] {
  const rng = new SeededRandom(p.seed);
  const n = labels.length;
  const shards: number[][] = Array.from({ length: p.num_shards }, () => []);
  if (p.scheme === 'iid') {
    rng.shuffle([...Array(n).keys()]).forEach((idx, i) => shards[i % p.num_shards].push(idx));
  } else if (p.scheme === 'quantity') {
    const order = rng.shuffle([...Array(n).keys()]);
    cutByProportions(order, rng.dirichlet(p.alpha, p.num_shards)).forEach((part, s) => shards[s].push(...part));
  } else {
    for (let c = 0; c < numClasses; c++) {
      const ofClass = rng.shuffle([...Array(n).keys()].filter((i) => labels[i] === c));
      cutByProportions(ofClass, rng.dirichlet(p.alpha, p.num_shards)).forEach((part, s) => shards[s].push(...part));
    }
  }
  // No shard may be empty: an envoy with nothing to train on is a configuration error, better fixed here.
  for (const shard of shards) {
    if (shard.length === 0) {
      const donor = shards.reduce((a, b) => (b.length > a.length ? b : a));
      shard.push(donor.pop()!);
    }
  }
  return shards.map((s) => s.sort((a, b) => a - b));
}

function cutByProportions(items: number[], proportions: number[]): number[][] {
  const parts: number[][] = [];
  let start = 0;
  let cumulative = 0;
  proportions.forEach((q, s) => {
    cumulative += q;
    const end = s === proportions.length - 1 ? items.length : Math.round(cumulative * items.length);
    parts.push(items.slice(start, end));
    start = end;
  });
  return parts;
}

export function takeShard(ds: ImageDataset, p: Partition): ImageDataset {
  const shards = partitionIndices(ds.labels, ds.classNames.length, p);
  return subset(ds, shards[p.index], `${ds.origin} [${p.scheme} shard ${p.index + 1}/${p.num_shards}]`);
}
