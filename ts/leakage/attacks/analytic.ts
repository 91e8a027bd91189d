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
import type { AttackSetting, Reconstruction } from './common.ts';
import { invertFeatures, type FeatureInversionOptions } from './feature-inversion.ts';
import { dominantRows, recoverLayerInput } from './linear-layer.ts';

export function analyticAttack(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, o: FeatureInversionOptions): Reconstruction {
  const started = performance.now();
  if (s.batch === 1) {
    const target = recoverLayerInput(s.params, observed).features;
    const r = invertFeatures({ ...s, aggregate: undefined }, target, labels, o);
    target.dispose();
    return { ...r, seconds: (performance.now() - started) / 1000 };
  }
  // A batch or aggregate: each dominated row is one image's features, each an independent one-image problem.
  // They are inverted together, as a batch whose batch norm takes each image's own statistics (per-image),
  // which is the same arithmetic as one image at a time, in one pass. Observed batch-norm statistics describe
  // the whole batch, not one of its images; mixed rows give blends, which restarts do not sharpen.
  const targets = dominantRows(s.params, observed, s.batch);
  const r = invertFeatures({ ...s, mode: 'per-image', aggregate: undefined }, targets, labels, { ...o, restarts: 1, bnStatistics: undefined });
  targets.dispose();
  return { ...r, seconds: (performance.now() - started) / 1000 };
}
