/** Robbing the Fed's imprint layer, as the lab models it: what a director that adds one obtains from a batch. */
import test from 'ava';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { imprintGradients, imprintLayerFor, recoverImprinted } from '../ts/leakage/attacks/imprint.ts';
import { meanImage } from '../ts/leakage/metrics.ts';
import { scoreBatch, split } from '../ts/leakage/score.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train');
const PIXELS = 784;

test('an imprint layer gives back every image alone between two thresholds exactly, from a batch of 64', (t) => {
  const batch = train.images.slice(1000 * PIXELS, 1064 * PIXELS);
  const layer = imprintLayerFor(train.images, PIXELS, 256);
  // Each image's loss gradient: any non-zero number per image (the layer after weighs every row alike).
  const delta = Array.from({ length: 64 }, (_, i) => (i % 2 ? 1 : -1) * (0.1 + (i % 7) / 10));
  const recovered = recoverImprinted(imprintGradients(layer, batch, PIXELS, delta), PIXELS);
  const scores = scoreBatch(split(batch, PIXELS), recovered, meanImage(train.images, PIXELS), [28, 28, 1]).filter(Boolean);
  const exact = scores.filter((s) => s.psnr >= 60).length;
  t.true(exact >= 40, `${exact} of 64 images back at >= 60 dB (the rest shared a bin)`);
  t.log(`${exact} of 64 images back at >= 60 dB`);
});

test('with thresholds too coarse for the batch, images come back only as blends', (t) => {
  const batch = train.images.slice(1000 * PIXELS, 1064 * PIXELS);
  const recovered = recoverImprinted(imprintGradients(imprintLayerFor(train.images, PIXELS, 4), batch, PIXELS, new Array(64).fill(1)), PIXELS);
  t.true(recovered.length <= 4);
  const scores = scoreBatch(split(batch, PIXELS), recovered, meanImage(train.images, PIXELS), [28, 28, 1]).filter(Boolean);
  t.true(scores.every((s) => s.psnr < 40), 'no image alone in a bin of 16');
});
