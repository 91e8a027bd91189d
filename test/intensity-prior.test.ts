/** The intensity prior (ts/leakage/attacks/intensity-prior.ts) restores what it claims to. */
import test from 'ava';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { applyIntensityPrior, intensityPrior } from '../ts/leakage/attacks/intensity-prior.ts';
import { psnr } from '../ts/leakage/metrics.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const images = loadPneumoniaMnist(PNEUMONIAMNIST, 'test', 4).images;
const PIXELS = 784;
const first = images.slice(0, PIXELS);

test('the prior is the average per-image mean and standard deviation', (t) => {
  const flatImage = new Float32Array(4).fill(0.5);
  const stripes = Float32Array.of(0, 1, 0, 1);
  const prior = intensityPrior(Float32Array.from([...flatImage, ...stripes]), 4);
  t.true(Math.abs(prior.mean - 0.5) < 1e-12);
  t.true(Math.abs(prior.std - 0.25) < 1e-12, `(0 + 0.5) / 2, got ${prior.std}`);
});

test('a reconstruction right up to brightness and contrast comes back to the image when the prior fits it', (t) => {
  const blind = first.map((v) => 0.2 + 0.3 * v); // what a contrast-blind attack may return
  const own = intensityPrior(first, PIXELS);
  const restored = applyIntensityPrior(blind, PIXELS, own);
  t.true(psnr(first, blind) < 15, `before: ${psnr(first, blind)} dB`);
  t.true(psnr(first, restored) > 60, `after: ${psnr(first, restored)} dB`);
  // With the dataset's prior instead of the image's own, still far better than the blind version.
  const dataset = intensityPrior(images, PIXELS);
  t.true(psnr(first, applyIntensityPrior(blind, PIXELS, dataset)) > psnr(first, blind) + 5);
  // Each image of a batch is handled on its own; a flat image gets the prior's brightness.
  const batch = applyIntensityPrior(Float32Array.from([...blind, ...new Float32Array(PIXELS).fill(0.9)]), PIXELS, own);
  t.deepEqual(batch.slice(0, PIXELS), restored);
  t.true(batch.slice(PIXELS).every((v) => Math.abs(v - own.mean) < 1e-6));
});

test('with `only`, just the marked images of a batch get the prior', (t) => {
  const blind = first.map((v) => 0.2 + 0.3 * v);
  const own = intensityPrior(first, PIXELS);
  const out = applyIntensityPrior(Float32Array.from([...blind, ...blind]), PIXELS, own, [false, true]);
  t.deepEqual(out.slice(0, PIXELS), blind);
  t.true(psnr(first, out.slice(PIXELS)) > 60);
});
