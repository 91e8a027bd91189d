/**
 * The brightness and contrast an attack does not find. With batch norm in training mode every conv output
 * is normalized over the batch, so an update depends only weakly on the images' brightness and contrast
 * (what is left comes through batch norm's epsilon and the zero-padded borders), and the attacks leave them
 * near where their random start put them. They get the shapes right and the intensity wrong: the adaptive
 * PRECODE attack reached SSIM 0.98 at 20.8 dB, barely over the mean-image floor's PSNR (19.6 dB), and
 * 32.4 dB once given the prior below. Scored by PSNR, that would look like protection and is not.
 *
 * So the attacker fills in those two numbers from what it knows of the data, as it knows the training-set
 * mean image the floor is made of: each reconstruction gets the average per-image mean and standard
 * deviation of the training set. Only when nothing in the update pins them down (training-mode batch norm
 * and no batch-norm statistics matched); otherwise the attack's own intensities stand. Feature inversion (the
 * analytic attacks) pins them itself when it matches an image's features exactly; an image it matched only
 * approximately gets the prior: at width 16 the audit's PRECODE probes came back with the right X-ray at SSIM
 * 0.92 and the contrast blown out, 14–16 dB, below the floor by PSNR.
 */

export interface IntensityPrior { mean: number; std: number }

/** Average over the images of each image's own pixel mean and standard deviation. */
export function intensityPrior(images: Float32Array, pixelsPerImage: number): IntensityPrior {
  const n = images.length / pixelsPerImage;
  let meanSum = 0;
  let stdSum = 0;
  for (let i = 0; i < n; i++) {
    const { mean, std } = moments(images.subarray(i * pixelsPerImage, (i + 1) * pixelsPerImage));
    meanSum += mean;
    stdSum += std;
  }
  return { mean: meanSum / n, std: stdSum / n };
}

/**
 * Each image of `batch` shifted and scaled to the prior's mean and standard deviation, kept in [0, 1]; with `only`,
 * just the images it marks (the others are copied as they are).
 */
export function applyIntensityPrior(batch: Float32Array, pixelsPerImage: number, prior: IntensityPrior, only?: boolean[]): Float32Array {
  const out = Float32Array.from(batch);
  for (let start = 0; start < batch.length; start += pixelsPerImage) {
    if (only && !only[start / pixelsPerImage]) continue;
    const image = batch.subarray(start, start + pixelsPerImage);
    const { mean, std } = moments(image);
    // A flat image has no contrast to rescale: it becomes the prior's mean brightness.
    const gain = std > 1e-8 ? prior.std / std : 0;
    for (let p = 0; p < image.length; p++) out[start + p] = Math.min(1, Math.max(0, prior.mean + (image[p] - mean) * gain));
  }
  return out;
}

function moments(v: ArrayLike<number>): IntensityPrior {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i];
  const mean = sum / v.length;
  let squares = 0;
  for (let i = 0; i < v.length; i++) squares += (v[i] - mean) ** 2;
  return { mean, std: Math.sqrt(squares / v.length) };
}
