/**
 * Scoring a batch reconstruction against the true images: the attack returns its images in its own order
 * (labels come sorted by class), so each true image is paired with the reconstruction that resembles it
 * most (greedy on PSNR; batches are small), then PSNR/SSIM, the mean-image floor and the gap above it.
 */
import { type Quality, quality } from './metrics.ts';

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
  const pairs = truth.flatMap((t, i) => reconstructions.map((r, j) => ({ i, j, q: quality(t, r, shape) })));
  pairs.sort((a, b) => b.q.psnr - a.q.psnr);
  const scores: ImageScore[] = new Array(truth.length);
  const usedT = new Set<number>();
  const usedR = new Set<number>();
  for (const { i, j, q } of pairs) {
    if (usedT.has(i) || usedR.has(j)) continue;
    usedT.add(i);
    usedR.add(j);
    const floor = quality(truth[i], meanImage, shape);
    scores[i] = { ...q, floor, psnrGap: q.psnr - floor.psnr, ssimGap: q.ssim - floor.ssim, reconstructionIndex: j };
  }
  return scores;
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
