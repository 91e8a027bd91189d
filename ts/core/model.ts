/**
 * Model factory: the registry's layouts (architectures.ts) as tfjs layers models. The default is the original
 * system's ConvNetBN: [conv3x3 -> BatchNorm -> ReLU] at widths w, 2w, 2w; max-pool 3; flatten; dense.
 * Defenses (e.g. the PRECODE bottleneck) plug in as `beforeClassifier` layers, so the factory never needs
 * to know about them.
 */
import { tf } from './tf.ts';
import './fast-gradients.ts'; // registers the faster ReLU gradient every trainer uses
import { tfSeed } from './seeds.ts';
import { applyTorchDefaultInit } from './torch-init.ts';
import { ARCHITECTURES } from './architectures.ts';
import { GroupNormalization } from './group-norm.ts';
import { fastBatchNormalization } from './fast-batch-norm.ts';
import type { ModelSpec } from './config/experiment.ts';
import { precodePlugin } from './defenses/precode.ts';
import type { LayersModel, ModelPlugins } from './model-types.ts';

export type { LayersModel, ModelPlugins } from './model-types.ts';

/** moving = momentum * moving + (1 - momentum) * batch statistic, once per training step (tfjs-layers). */
export const BN_MOMENTUM = 0.9;

export interface BuildOptions {
  /**
   * Batch norm with the fused training gradient (fast-batch-norm.ts; default). `false`: tfjs-layers' own, whose
   * gradient tfjs builds op by op: the same numbers, slower; the benches time one against the other.
   */
  fusedBatchNorm?: boolean;
}

/**
 * The model a spec describes. `spec.precode.enabled` inserts PRECODE before the classifier, ahead of any
 * layers from `plugins`; a spec without `precode` (built by hand in older code) means no PRECODE.
 */
export function buildModel(spec: ModelSpec, plugins: ModelPlugins = {}, options: BuildOptions = {}): LayersModel {
  const layout = ARCHITECTURES[spec.architecture];
  if (!layout) throw new Error(`unknown model architecture '${spec.architecture}'`);
  const [height, width] = spec.input_size;
  const seedOf = (i: number) => tfSeed(spec.seed * 1000 + i);
  const model = tf.sequential({ name: spec.architecture });
  layout.widthMultipliers.forEach((multiplier, i) => {
    model.add(tf.layers.conv2d({
      ...(i === 0 ? { inputShape: [height, width, spec.channels] } : {}),
      filters: multiplier * spec.width, kernelSize: 3, padding: 'same', useBias: false,
      // Blocks 0-2 keep the seeds they had before the registry had a second architecture.
      kernelInitializer: tf.initializers.heNormal({ seed: seedOf(i < 3 ? i : 30 + i) }), name: `conv${i}`,
    }));
    const batchNorm = options.fusedBatchNorm === false ? tf.layers.batchNormalization : fastBatchNormalization;
    model.add(spec.normalization === 'group' ? new GroupNormalization({ name: `gn${i}` }) : batchNorm({ name: `bn${i}`, momentum: BN_MOMENTUM }));
    model.add(tf.layers.reLU({ name: `relu${i}` }));
    if (layout.poolAfter.includes(i)) model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${i}` }));
  });
  if (layout.head === 'global_average') {
    model.add(tf.layers.globalAveragePooling2d({ name: 'pool' }));
  } else {
    model.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 3, name: 'pool' }));
    model.add(tf.layers.flatten({ name: 'flatten' }));
  }
  // PRECODE draws its two kernels from seedOf(11) and seedOf(11) + 1; other plugins keep seedOf(10).
  if (spec.precode?.enabled) for (const layer of precodePlugin(spec.precode).beforeClassifier!(seedOf(11))) model.add(layer);
  for (const layer of plugins.beforeClassifier?.(seedOf(10)) ?? []) model.add(layer);
  model.add(tf.layers.dense({
    units: spec.num_classes, name: 'classifier',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seedOf(20) }),
  }));
  if (spec.init === 'torch') applyTorchDefaultInit(model, spec.seed);
  return model;
}

export function countParameters(model: LayersModel): number {
  return model.countParams();
}
