/**
 * Reconstruction quality: PSNR and SSIM of an image against its target (pixels in [0, 1], H x W x C,
 * channels last), and the no-information floor. Plain arrays in float64: these are scores, not training.
 */

/** Identical images have infinite PSNR; report this instead so means and JSON stay finite. */
export const PSNR_CAP_DB = 100;

export function psnr(target: ArrayLike<number>, reconstruction: ArrayLike<number>): number {
  if (target.length !== reconstruction.length) throw new Error(`psnr: ${target.length} vs ${reconstruction.length} pixels`);
  let sum = 0;
  for (let i = 0; i < target.length; i++) sum += (target[i] - reconstruction[i]) ** 2;
  const mse = sum / target.length;
  return mse === 0 ? PSNR_CAP_DB : Math.min(PSNR_CAP_DB, 10 * Math.log10(1 / mse));
}

const K1 = 0.01;
const K2 = 0.03;
const SIGMA = 1.5;
/** scipy's gaussian_filter truncates at 3.5 sigma in skimage's SSIM: radius 5, an 11 x 11 window. */
const RADIUS = Math.floor(3.5 * SIGMA + 0.5);

function gaussianKernel(): Float64Array {
  const k = new Float64Array(2 * RADIUS + 1);
  let total = 0;
  for (let i = -RADIUS; i <= RADIUS; i++) total += (k[i + RADIUS] = Math.exp(-0.5 * (i / SIGMA) ** 2));
  return k.map((v) => v / total);
}
const KERNEL = gaussianKernel();

/**
 * Gaussian-weighted local mean over the windows that lie fully inside the image. skimage filters the whole
 * image (reflecting at borders) but then averages SSIM only over pixels at least RADIUS from the border,
 * where no reflection is involved: computing just those is the same number.
 */
function localMean(img: Float64Array, h: number, w: number): Float64Array {
  const oh = h - 2 * RADIUS;
  const ow = w - 2 * RADIUS;
  const rows = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < KERNEL.length; k++) s += KERNEL[k] * img[y * w + x + k];
      rows[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let k = 0; k < KERNEL.length; k++) s += KERNEL[k] * rows[(y + k) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** SSIM of one channel (Wang et al. 2004, Gaussian window sigma 1.5, population covariance, data range 1). */
function ssimChannel(a: Float64Array, b: Float64Array, h: number, w: number): number {
  const c1 = K1 ** 2;
  const c2 = K2 ** 2;
  const mul = (p: Float64Array, q: Float64Array) => p.map((v, i) => v * q[i]);
  const [ua, ub] = [localMean(a, h, w), localMean(b, h, w)];
  const [uaa, ubb, uab] = [localMean(mul(a, a), h, w), localMean(mul(b, b), h, w), localMean(mul(a, b), h, w)];
  let total = 0;
  for (let i = 0; i < ua.length; i++) {
    const va = uaa[i] - ua[i] ** 2;
    const vb = ubb[i] - ub[i] ** 2;
    const cov = uab[i] - ua[i] * ub[i];
    total += ((2 * ua[i] * ub[i] + c1) * (2 * cov + c2)) / ((ua[i] ** 2 + ub[i] ** 2 + c1) * (va + vb + c2));
  }
  return total / ua.length;
}

/** Mean SSIM over channels, like skimage's structural_similarity(..., channel_axis=-1). */
export function ssim(target: ArrayLike<number>, reconstruction: ArrayLike<number>, [h, w, c]: [number, number, number]): number {
  if (target.length !== h * w * c || reconstruction.length !== h * w * c) throw new Error(`ssim: expected ${h}x${w}x${c} images`);
  if (h <= 2 * RADIUS || w <= 2 * RADIUS) throw new Error(`ssim: images must be larger than ${2 * RADIUS + 1} pixels a side`);
  let total = 0;
  for (let ch = 0; ch < c; ch++) {
    const a = new Float64Array(h * w);
    const b = new Float64Array(h * w);
    for (let i = 0; i < h * w; i++) {
      a[i] = target[i * c + ch];
      b[i] = reconstruction[i * c + ch];
    }
    total += ssimChannel(a, b, h, w);
  }
  return total / c;
}

export interface Quality { psnr: number; ssim: number }

export function quality(target: ArrayLike<number>, reconstruction: ArrayLike<number>, shape: [number, number, number]): Quality {
  return { psnr: psnr(target, reconstruction), ssim: ssim(target, reconstruction, shape) };
}

/** The training set's mean image: the best guess of an attacker who learned nothing from the update. */
export function meanImage(images: Float32Array, pixelsPerImage: number): Float32Array {
  const n = images.length / pixelsPerImage;
  const mean = new Float32Array(pixelsPerImage);
  for (let i = 0; i < images.length; i++) mean[i % pixelsPerImage] += images[i] / n;
  return mean;
}

/** The no-information floor: the mean image scored against each target. Leakage is the gap above it. */
export function floorQuality(mean: Float32Array, targets: Float32Array[], shape: [number, number, number]): Quality[] {
  return targets.map((t) => quality(t, mean, shape));
}
