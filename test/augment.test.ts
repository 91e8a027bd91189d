import test from 'ava';
import { augmentImages, type AugmentationSettings } from '../ts/core/data/augment.ts';
import { SeededRandom } from '../ts/core/data/rng.ts';
import { AugmentationSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

const SHAPE: [number, number, number] = [28, 28, 1];
const PIXELS = 784;
const NONE: AugmentationSettings = { rotation_degrees: 0, translation: 0, zoom: 0, brightness: 0, contrast: 0 };
const xrays = loadPneumoniaMnist(PNEUMONIAMNIST, 'train', 16);

function augmented(settings: Partial<AugmentationSettings>, seed = 1, count = 16): Float32Array {
  const pixels = xrays.images.slice(0, count * PIXELS);
  augmentImages(pixels, count, SHAPE, { ...NONE, ...settings }, new SeededRandom(seed));
  return pixels;
}

const image = (pixels: Float32Array, i: number) => pixels.subarray(i * PIXELS, (i + 1) * PIXELS);
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  const ma = Array.from(a).reduce((s, v) => s + v, 0) / n, mb = Array.from(b).reduce((s, v) => s + v, 0) / n;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) { ab += (a[i] - ma) * (b[i] - mb); aa += (a[i] - ma) ** 2; bb += (b[i] - mb) ** 2; }
  return ab / Math.sqrt(aa * bb);
}
const mirrored = (img: ArrayLike<number>) => Float32Array.from({ length: PIXELS }, (_, k) => img[Math.floor(k / 28) * 28 + 27 - (k % 28)]);

test('with every range at zero augmentation leaves the images exactly as they were', (t) => {
  t.deepEqual(augmented({}), xrays.images.slice(0, 16 * PIXELS));
});

test('the schema\'s default augmentation is off, and its ranges are the documented ones', (t) => {
  const d = AugmentationSchema.parse({});
  t.false(d.enabled);
  t.deepEqual({ ...d, enabled: undefined }, { enabled: undefined, rotation_degrees: 10, translation: 0.1, zoom: 0.1, brightness: 0.1, contrast: 0.1 });
  t.throws(() => AugmentationSchema.parse({ flips: true }), { message: /flips/ });
});

test('brightness shifts each image by one offset within its range; pixels stay in [0, 1]', (t) => {
  const out = augmented({ brightness: 0.1 });
  const offsets = new Set<string>();
  for (let i = 0; i < 16; i++) {
    const src = image(xrays.images, i), dst = image(out, i);
    const deltas = Array.from(dst, (v, k) => v - src[k]).filter((_, k) => dst[k] > 0 && dst[k] < 1);
    const offset = deltas[0];
    t.true(Math.abs(offset) <= 0.1 + 1e-6, `image ${i}: offset ${offset}`);
    t.true(deltas.every((d) => Math.abs(d - offset) < 1e-5), `image ${i}: one offset for the whole image`);
    offsets.add(offset.toFixed(4));
  }
  t.true(offsets.size > 8, 'offsets differ from image to image');
  t.true(out.every((v) => v >= 0 && v <= 1));
});

test('a warp of a uniform image stays uniform: outside the image reads the edge, no black corners', (t) => {
  const flat = new Float32Array(4 * PIXELS).fill(0.6);
  augmentImages(flat, 4, SHAPE, { ...NONE, rotation_degrees: 30, translation: 0.3, zoom: 0.3 }, new SeededRandom(3));
  t.true(flat.every((v) => Math.abs(v - 0.6) < 1e-6));
});

test('the default warp keeps an X-ray recognisably itself and never mirrors it (the heart stays on its side)', (t) => {
  const out = augmented(AugmentationSchema.parse({}));
  for (let i = 0; i < 16; i++) {
    const src = image(xrays.images, i), dst = image(out, i);
    t.true(correlation(dst, src) > 0.5, `image ${i}: correlation with the original ${correlation(dst, src).toFixed(3)}`);
    t.true(correlation(dst, src) > correlation(dst, mirrored(src)), `image ${i} looks more like its mirror image`);
  }
  t.notDeepEqual(out, xrays.images.slice(0, 16 * PIXELS));
});

test('augmentation is reproducible from its seed and differs between seeds', (t) => {
  const settings = AugmentationSchema.parse({});
  t.deepEqual(augmented(settings, 5), augmented(settings, 5));
  t.notDeepEqual(augmented(settings, 5), augmented(settings, 6));
});

test('local training augments its batches when the experiment asks: the same seed gives the same model, augmentation a different one', async (t) => {
  const { buildModel } = await import('../ts/core/model.ts');
  const { trainLocal } = await import('../ts/core/training.ts');
  const { ModelSpecSchema, TrainingSchema } = await import('../ts/core/config/experiment.ts');
  const trainOnce = async (enabled: boolean) => {
    const model = buildModel(ModelSpecSchema.parse({ architecture: 'convnet_gap', width: 4, seed: 3 }));
    await trainLocal(model, xrays, { config: TrainingSchema.parse({ batch_size: 8, augmentation: { enabled } }) });
    const weights = model.getWeights().map((w) => Array.from(w.dataSync())).flat();
    model.dispose();
    return weights;
  };
  const [plain, augmentedOnce, augmentedAgain] = [await trainOnce(false), await trainOnce(true), await trainOnce(true)];
  t.deepEqual(augmentedOnce, augmentedAgain);
  t.notDeepEqual(plain, augmentedOnce);
});
