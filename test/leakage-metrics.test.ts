import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { floorQuality, meanImage, psnr, PSNR_CAP_DB, ssim } from '../ts/leakage/metrics.ts';
import { chanceGap } from '../ts/leakage/score.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { FIXTURES, PNEUMONIAMNIST } from './helpers/paths.ts';

interface Pair { name: string; target: number[]; reconstruction: number[]; psnr: number; ssim: number }
const fixture = JSON.parse(readFileSync(join(FIXTURES, 'ssim_fixture.json'), 'utf8')) as { pairs: Pair[] };
const scale = (v: number[]) => Float64Array.from(v, (x) => x / 255);

for (const pair of fixture.pairs) {
  test(`PSNR and SSIM equal scikit-image's on the '${pair.name}' pair`, (t) => {
    const [a, b] = [scale(pair.target), scale(pair.reconstruction)];
    t.true(Math.abs(psnr(a, b) - pair.psnr) < 1e-9, `psnr ${psnr(a, b)} vs ${pair.psnr}`);
    t.true(Math.abs(ssim(a, b, [28, 28, 1]) - pair.ssim) < 1e-9, `ssim ${ssim(a, b, [28, 28, 1])} vs ${pair.ssim}`);
  });
}

test('identical images: SSIM 1 and PSNR at its cap', (t) => {
  const a = scale(fixture.pairs[0].target);
  t.is(psnr(a, a), PSNR_CAP_DB);
  t.true(Math.abs(ssim(a, a, [28, 28, 1]) - 1) < 1e-12);
});

test('the no-information floor on PneumoniaMNIST is high, as the issue measured (14-22 dB)', (t) => {
  const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train');
  const testSet = loadPneumoniaMnist(PNEUMONIAMNIST, 'test', 8);
  const mean = meanImage(train.images, 784);
  const targets = [...Array(8).keys()].map((i) => testSet.images.slice(i * 784, (i + 1) * 784));
  const floor = floorQuality(mean, targets, [28, 28, 1]);
  for (const q of floor) {
    t.true(q.psnr > 10 && q.psnr < 26, `floor psnr ${q.psnr}`);
    t.true(q.ssim > 0.2 && q.ssim < 0.85, `floor ssim ${q.ssim}`);
  }
});

test('chance alone beats the mean image on a batch, the more the larger it is; never on one image', (t) => {
  const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train');
  const mean = meanImage(train.images, 784);
  const batch = (n: number, from: number) => Array.from({ length: n }, (_, i) => train.images.slice((from + i) * 784, (from + i + 1) * 784));
  t.is(chanceGap(batch(1, 100), mean, train.images), 0);
  const small = chanceGap(batch(3, 100), mean, train.images);
  const large = chanceGap(batch(64, 200), mean, train.images);
  t.true(large > 1, `64 no-information guesses reach ${large.toFixed(2)} dB over the mean image`);
  t.true(large > small, `chance grows with the batch (${small.toFixed(2)} dB on 3, ${large.toFixed(2)} dB on 64)`);
  // Seeded: the same batch, the same chance score.
  t.is(chanceGap(batch(3, 100), mean, train.images), small);
});
