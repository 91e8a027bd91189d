/**
 * Data augmentation for chest X-rays, applied to each training batch on the envoy: a random affine warp
 * (small rotation, translation, zoom) and a random brightness/contrast change per image. No flips: a
 * mirrored chest puts the heart on the wrong side, which no real radiograph shows.
 *
 * It runs on the batch's pixels in JavaScript (bilinear sampling), not as a TensorFlow op: tfjs-node has
 * no kernel for tf.image.transform, and a 28x28 batch of 32 costs ~25k samples, a fraction of one step.
 * Seeded by the caller, so a round's augmented batches are reproducible.
 */
import type { SeededRandom } from './rng.ts';

export interface AugmentationSettings {
  /** Largest rotation either way, in degrees. */
  rotation_degrees: number;
  /** Largest shift either way, as a fraction of the image's side. */
  translation: number;
  /** Largest zoom either way: the scale is drawn from [1 - zoom, 1 + zoom]. */
  zoom: number;
  /** Largest brightness change either way, in pixel units ([0, 1] images). */
  brightness: number;
  /** Largest contrast change either way: contrast factor in [1 - contrast, 1 + contrast] about the image mean. */
  contrast: number;
}

/** Augments `count` images of `height x width x channels` in `pixels` (NHWC) in place. */
export function augmentImages(pixels: Float32Array, count: number, shape: [number, number, number], settings: AugmentationSettings, rng: SeededRandom): void {
  const perImage = shape[0] * shape[1] * shape[2];
  const source = new Float32Array(perImage);
  for (let i = 0; i < count; i++) {
    const image = pixels.subarray(i * perImage, (i + 1) * perImage);
    source.set(image);
    warpAffine(source, image, shape, randomWarp(settings, shape, rng));
    adjustIntensity(image, 1 + symmetric(rng, settings.contrast), symmetric(rng, settings.brightness));
  }
}

/** Uniform in [-limit, limit]. */
function symmetric(rng: SeededRandom, limit: number): number {
  return limit === 0 ? 0 : (2 * rng.next() - 1) * limit;
}

/** Maps an output pixel (x, y) to where it samples the input: [a, b, c, d, e, f] with x' = ax + by + c, y' = dx + ey + f. */
type InverseAffine = [number, number, number, number, number, number];

function randomWarp(settings: AugmentationSettings, [height, width]: [number, number, number], rng: SeededRandom): InverseAffine {
  const angle = (symmetric(rng, settings.rotation_degrees) * Math.PI) / 180;
  const scale = 1 + symmetric(rng, settings.zoom);
  const shiftX = symmetric(rng, settings.translation) * width;
  const shiftY = symmetric(rng, settings.translation) * height;
  // Rotate and zoom about the image centre, then shift; the sampler needs the inverse map (output -> input).
  const cos = Math.cos(angle) / scale;
  const sin = Math.sin(angle) / scale;
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  return [
    cos, sin, cx - cos * (cx + shiftX) - sin * (cy + shiftY),
    -sin, cos, cy + sin * (cx + shiftX) - cos * (cy + shiftY),
  ];
}

/** Bilinear sampling; outside the image reads the nearest edge pixel (no black corners to learn from). */
function warpAffine(input: Float32Array, output: Float32Array, [height, width, channels]: [number, number, number], m: InverseAffine): void {
  const clampX = (x: number) => (x < 0 ? 0 : x > width - 1 ? width - 1 : x);
  const clampY = (y: number) => (y < 0 ? 0 : y > height - 1 ? height - 1 : y);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = clampX(m[0] * x + m[1] * y + m[2]);
      const sy = clampY(m[3] * x + m[4] * y + m[5]);
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const x1 = Math.min(x0 + 1, width - 1), y1 = Math.min(y0 + 1, height - 1);
      const fx = sx - x0, fy = sy - y0;
      for (let c = 0; c < channels; c++) {
        const at = (px: number, py: number) => input[(py * width + px) * channels + c];
        const top = at(x0, y0) * (1 - fx) + at(x1, y0) * fx;
        const bottom = at(x0, y1) * (1 - fx) + at(x1, y1) * fx;
        output[(y * width + x) * channels + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
}

/** Contrast about the image's mean, then brightness; clipped to [0, 1] like the data it came from. */
function adjustIntensity(image: Float32Array, contrast: number, brightness: number): void {
  if (contrast === 1 && brightness === 0) return;
  let mean = 0;
  for (const v of image) mean += v;
  mean /= image.length;
  for (let i = 0; i < image.length; i++) {
    const v = (image[i] - mean) * contrast + mean + brightness;
    image[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}
