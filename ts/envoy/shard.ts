/** An envoy's local data: its training and validation splits, and the descriptor it registers with. */
import type { ShardConfig } from '../core/config/envoy.ts';
import { classCounts, size, type ImageDataset } from '../core/data/dataset.ts';
import { loadDataSource } from '../core/data/load.ts';
import { takeShard } from '../core/data/partition.ts';
import type { ShardDescriptor } from '../core/messages.ts';

export interface Shard { train: ImageDataset; val?: ImageDataset; descriptor: ShardDescriptor }

export function loadShard(envoy: string, config: ShardConfig): Shard {
  let train = loadDataSource(config.train);
  let val = config.val ? loadDataSource(config.val) : undefined;
  if (config.partition) {
    train = takeShard(train, config.partition);
    // The same partition rule applied to the validation split keeps its label mix like the training share's.
    if (val) val = takeShard(val, config.partition);
  }
  if (val && val.sampleShape.join('x') !== train.sampleShape.join('x')) {
    throw new Error(`envoy ${envoy}: validation samples are ${val.sampleShape.join('x')}, training samples ${train.sampleShape.join('x')}`);
  }
  return { train, val, descriptor: describe(envoy, config.description || train.origin, train, val) };
}

function describe(envoy: string, description: string, train: ImageDataset, val?: ImageDataset): ShardDescriptor {
  return {
    envoy,
    description,
    sample_shape: [...train.sampleShape],
    target_shape: [1],
    class_names: train.classNames,
    counts: { train: size(train), val: val ? size(val) : 0 },
    class_counts: { train: classCounts(train), val: val ? classCounts(val) : [] },
  };
}
