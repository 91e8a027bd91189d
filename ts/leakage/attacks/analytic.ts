/**
 * The analytic attack: the strongest the lab has on a one-image update. Read the conv features off the
 * first dense layer after the convs (linear-layer.ts: PRECODE's encoder, or the classifier), exactly; then
 * find the image with those features (feature-inversion.ts). No gradient matching: PRECODE's noise, its KL
 * term and the loss do not enter. On ConvNetBN at width 32 it returns the image to float32 precision.
 *
 * For a batch, or a secure aggregate of several envoys' one-image updates, each dense-layer row that one
 * image dominates gives that image's features; each is inverted as an image of its own. Where no row is
 * dominated (the two-class classifier mixes every image in both rows), what comes back is a blend.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import type { AttackSetting, Reconstruction } from './common.ts';
import { invertFeatures, type FeatureInversionOptions } from './feature-inversion.ts';
import { dominantRows, recoverLayerInput } from './linear-layer.ts';

export function analyticAttack(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, o: FeatureInversionOptions): Reconstruction {
  const started = performance.now();
  const one: AttackSetting = { ...s, batch: 1, aggregate: undefined };
  const pixels = s.imageShape.reduce((a, b) => a * b, 1);
  const targets = s.batch === 1 ? [recoverLayerInput(s.params, observed).features] : splitRows(dominantRows(s.params, observed, s.batch));
  const images = new Float32Array(s.batch * pixels);
  let loss = 0;
  let iterations = 0;
  targets.forEach((target, i) => {
    const start = o.start?.subarray(i * pixels, (i + 1) * pixels);
    // Observed batch-norm statistics describe the whole batch (or aggregate), not one of its images.
    const bnStatistics = s.batch === 1 ? o.bnStatistics : undefined;
    // Mixed rows give blends, which more restarts do not sharpen: one restart per image of a batch.
    const restarts = s.batch === 1 ? o.restarts : 1;
    const r = invertFeatures(one, target, labels.subarray(i, i + 1), { ...o, restarts, bnStatistics, seed: o.seed * 13 + i, start: start && Float32Array.from(start) });
    images.set(r.images, i * pixels);
    loss += r.loss;
    iterations += r.iterations;
  });
  tf.dispose(targets);
  return { images, labels, loss, iterations, seconds: (performance.now() - started) / 1000 };
}

function splitRows(rows: TF.Tensor2D): TF.Tensor2D[] {
  const out = tf.tidy(() => tf.split(rows, rows.shape[0], 0) as TF.Tensor2D[]);
  rows.dispose();
  return out;
}
