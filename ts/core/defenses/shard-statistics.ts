/**
 * Batch-norm statistics over the shard, not over the batches trained on.
 *
 * An update carries every batch-norm layer's moving mean and variance. tfjs-layers moves them towards each
 * training batch's statistics, so after one step on one image the director reads that image's per-layer
 * feature means and variances straight off the update (ts/leakage/attacks/bn-statistics.ts; "See through
 * Gradients", Yin et al. 2021). That channel is separate from the gradients: PRECODE, which perturbs
 * gradients, does nothing for it (measured: +7 dB over the floor on a PRECODE model's single-image update,
 * all of it from the statistics).
 *
 * With `training.batch_norm_statistics: shard` the envoy replaces the moving statistics after local training
 * by their exact values over its whole shard (population statistics, as "BN recalibration" computes them):
 * layer by layer, each layer's input computed in inference mode through the layers before it, already set.
 * The update then tells the director the hospital's feature statistics over thousands of images, as any
 * model trained on them does, and nothing about which images this round trained on.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../tf.ts';
import { size, type ImageDataset } from '../data/dataset.ts';
import { batchOf, consecutiveBatches } from '../data/batches.ts';
import type { LayersModel } from '../model.ts';

const BATCH = 256;

/** Per-channel mean and (biased, as training mode computes it) variance, accumulated in float64. */
interface ChannelMoments { mean: Float64Array; variance: Float64Array; count: number }

/** Sets every batch-norm layer's moving statistics to their values over `ds` (all of it). */
export function setShardStatistics(model: LayersModel, ds: ImageDataset): void {
  if (size(ds) === 0) throw new Error('batch_norm_statistics: shard needs a non-empty training shard');
  for (const layer of batchNormLayers(model)) {
    const moments = inputMoments(model, layer, ds);
    const [gamma, beta] = layer.getWeights().slice(0, 2);
    const stats = [tf.tensor1d(Float32Array.from(moments.mean)), tf.tensor1d(Float32Array.from(moments.variance))];
    layer.setWeights([gamma, beta, ...stats]);
    tf.dispose(stats);
  }
}

function batchNormLayers(model: LayersModel): TF.layers.Layer[] {
  const layers = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
  for (const l of layers) {
    const names = l.weights.map((w) => w.originalName.split('/').pop());
    if (names.join(',') !== 'gamma,beta,moving_mean,moving_variance') {
      throw new Error(`batch-norm layer ${l.name} has weights [${names.join(', ')}]; expected gamma, beta, moving_mean, moving_variance`);
    }
  }
  return layers;
}

/** The moments of `layer`'s input over `ds`, the layers before it in inference mode. */
function inputMoments(model: LayersModel, layer: TF.layers.Layer, ds: ImageDataset): ChannelMoments {
  const probe = tf.model({ inputs: model.inputs, outputs: layer.input as TF.SymbolicTensor });
  let total: ChannelMoments | null = null;
  for (const indices of consecutiveBatches(ds, BATCH)) {
    const [mean, variance, count] = tf.tidy(() => {
      const { x } = batchOf(ds, indices);
      const h = probe.apply(x, { training: false }) as TF.Tensor;
      const m = tf.moments(h, Array.from({ length: h.rank - 1 }, (_, i) => i));
      return [m.mean.dataSync(), m.variance.dataSync(), h.size / h.shape[h.rank - 1]] as const;
    });
    const part = { mean: Float64Array.from(mean), variance: Float64Array.from(variance), count };
    total = total ? combine(total, part) : part;
  }
  return total!;
}

/** Chan et al.'s pairwise update: the moments of two disjoint sets from each one's moments. */
function combine(a: ChannelMoments, b: ChannelMoments): ChannelMoments {
  const count = a.count + b.count;
  const mean = new Float64Array(a.mean.length);
  const variance = new Float64Array(a.mean.length);
  for (let c = 0; c < mean.length; c++) {
    const d = b.mean[c] - a.mean[c];
    mean[c] = a.mean[c] + (d * b.count) / count;
    variance[c] = (a.variance[c] * a.count + b.variance[c] * b.count + (d * d * a.count * b.count) / count) / count;
  }
  return { mean, variance, count };
}
