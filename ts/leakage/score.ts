/**
 * Scoring a batch reconstruction against the true images: the attack returns its images in its own order
 * (labels come sorted by class), so each true image is paired with the reconstruction that resembles it
 * most (greedy on PSNR), then PSNR/SSIM, the mean-image floor and the gap above it; for a batch, also what
 * chance alone scores under that pairing (chanceGap), which a batch's worst-case gap must exceed to mean anything.
 */
import { psnr, type Quality, quality } from './metrics.ts';

export interface ImageScore extends Quality { floor: Quality; psnrGap: number; ssimGap: number; reconstructionIndex: number }

export interface ScoreSummary {
  images: ImageScore[];
  psnr_mean: number;
  ssim_mean: number;
  floor_psnr_mean: number;
  floor_ssim_mean: number;
  psnr_gap_mean: number;
  /** The best-reconstructed image: the worst case for the envoy. */
  psnr_best: number;
  ssim_best: number;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);

export function split(images: Float32Array, pixels: number): Float32Array[] {
  return [...Array(images.length / pixels).keys()].map((i) => images.slice(i * pixels, (i + 1) * pixels));
}

export function scoreBatch(truth: Float32Array[], reconstructions: Float32Array[], meanImage: Float32Array,
  shape: [number, number, number]): ImageScore[] {
  const scores: ImageScore[] = new Array(truth.length);
  for (const { i, j } of greedyPairs(truth, reconstructions, (t, r) => psnr(t, r))) {
    const q = quality(truth[i], reconstructions[j], shape);
    const floor = quality(truth[i], meanImage, shape);
    scores[i] = { ...q, floor, psnrGap: q.psnr - floor.psnr, ssimGap: q.ssim - floor.ssim, reconstructionIndex: j };
  }
  return scores;
}

/** Each true image with the guess that resembles it most (by `score`), one to one, the best pairs first. */
function greedyPairs(truth: Float32Array[], guesses: Float32Array[], score: (t: Float32Array, g: Float32Array) => number) {
  const pairs = truth.flatMap((t, i) => guesses.map((g, j) => ({ i, j, s: score(t, g) })));
  pairs.sort((a, b) => b.s - a.s);
  const usedT = new Set<number>();
  const usedR = new Set<number>();
  return pairs.filter(({ i, j }) => {
    if (usedT.has(i) || usedR.has(j)) return false;
    usedT.add(i);
    usedR.add(j);
    return true;
  });
}

/** Blends of this many random public images: guesses that carry no information about the batch. */
const BLEND_SIZES = [2, 4, 8, 16, 32, 64];
const DRAWS = 2;

/**
 * What chance alone scores on a batch: the worst-case PSNR gap over the mean image that B guesses made without
 * any observation reach under the same one-to-one pairing. With one guess per image, each paired with the
 * image it resembles most, the luckiest pair beats the mean image by chance, more so the larger the batch
 * (measured here: 192 blends of 2 or 4 random training images, knowing nothing of the batch, reach +5 to +7
 * dB; 3 reach about +1 dB). The guesses are blends of 2 to 64 random public images (two draws of each); the
 * strongest set counts. Never single public images: PneumoniaMNIST holds near-duplicates, which a guess could
 * hit, and that is the public data's knowledge of one image, not what an update leaks. At most 0 for one image
 * (the mean image is the best single guess there).
 */
export function chanceGap(truth: Float32Array[], meanImage: Float32Array, publicImages: Float32Array, seed = 1): number {
  if (truth.length < 2) return 0;
  const pixels = meanImage.length;
  const count = publicImages.length / pixels;
  const floor = truth.map((t) => psnr(t, meanImage));
  // The batch's own images may be among the public ones (the lab attacks PneumoniaMNIST's training images):
  // a guess must never draw them, or chance would be knowing the answer.
  const own = new Set(truth.map(imageKey));
  const drawable = [...Array(count).keys()].filter((i) => !own.has(imageKey(publicImages.subarray(i * pixels, (i + 1) * pixels))));
  let state = (seed >>> 0) % 2147483647 || 1;
  const random = () => { state = Number((BigInt(state) * 48271n) % 2147483647n); return state / 2147483647; };
  let worst = 0;
  for (const k of BLEND_SIZES) {
    for (let draw = 0; draw < DRAWS; draw++) {
      const guesses = truth.map(() => {
        const blend = new Float32Array(pixels);
        for (let m = 0; m < k; m++) {
          const offset = drawable[Math.floor(random() * drawable.length)] * pixels;
          for (let p = 0; p < pixels; p++) blend[p] += publicImages[offset + p] / k;
        }
        return blend;
      });
      for (const { i, s } of greedyPairs(truth, guesses, (t, g) => psnr(t, g))) worst = Math.max(worst, s - floor[i]);
    }
  }
  return worst;
}

/** An image's exact identity (its bytes), to recognise the batch's own images among the public ones. */
function imageKey(image: Float32Array): string {
  return Buffer.from(image.buffer, image.byteOffset, image.byteLength).toString('base64');
}

export function summarize(images: ImageScore[]): ScoreSummary {
  return {
    images,
    psnr_mean: mean(images.map((s) => s.psnr)),
    ssim_mean: mean(images.map((s) => s.ssim)),
    floor_psnr_mean: mean(images.map((s) => s.floor.psnr)),
    floor_ssim_mean: mean(images.map((s) => s.floor.ssim)),
    psnr_gap_mean: mean(images.map((s) => s.psnrGap)),
    psnr_best: Math.max(...images.map((s) => s.psnr)),
    ssim_best: Math.max(...images.map((s) => s.ssim)),
  };
}
