/**
 * A Grad-CAM map drawn over the X-ray, as a PNG a clinician can open: the X-ray in grey at up to `maxSide`
 * pixels a side, the map upsampled to it and coloured from blue (no evidence) to red (most evidence), blended
 * in proportion to the evidence so the unremarkable lung stays readable.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';

/** PNG bytes of `cam` ([h, w] in [0, 1]) over `image` ([H, W, C], 0-255). */
export async function heatMapPng(image: TF.Tensor3D, cam: TF.Tensor2D, maxSide = 512): Promise<Uint8Array> {
  const node = (tf as unknown as { node?: { encodePng(t: TF.Tensor3D): Promise<Uint8Array> } }).node;
  if (!node) throw new Error('writing heat-map PNGs needs the tfjs-node backend (run npm run setup)');
  const rgb = tf.tidy(() => {
    const [height, width] = image.shape;
    const scale = Math.min(1, maxSide / Math.max(height, width));
    const size: [number, number] = [Math.max(1, Math.round(height * scale)), Math.max(1, Math.round(width * scale))];
    const grey = tf.image.resizeBilinear(image.toFloat().mean(2, true) as TF.Tensor3D, size, true).div(255); // [H, W, 1] in [0, 1]
    const evidence = tf.image.resizeBilinear(cam.expandDims(2) as TF.Tensor3D, size, true).clipByValue(0, 1) as TF.Tensor3D;
    const colour = jet(evidence);
    const alpha = evidence.mul(0.6);
    const blended = grey.tile([1, 1, 3]).mul(tf.scalar(1).sub(alpha)).add(colour.mul(alpha));
    return blended.mul(255).round().clipByValue(0, 255).toInt() as TF.Tensor3D;
  });
  try {
    return await node.encodePng(rgb);
  } finally {
    rgb.dispose();
  }
}

/** The "jet" colour map, piecewise linear: [H, W, 1] in [0, 1] to [H, W, 3] RGB in [0, 1]. */
function jet(v: TF.Tensor3D): TF.Tensor3D {
  const channel = (centre: number) => tf.scalar(1.5).sub(v.mul(4).sub(centre).abs()).clipByValue(0, 1);
  return tf.concat([channel(3), channel(2), channel(1)], 2) as TF.Tensor3D;
}
