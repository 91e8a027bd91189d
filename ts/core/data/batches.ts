/** Tensors from an ImageDataset: one batch by indices, and the consecutive batches inference walks. */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../tf.ts';
import { pixelsPerSample, size, type ImageDataset } from './dataset.ts';

/** `transform` may change the batch's pixels (NHWC, `count` images) before they become a tensor: augmentation. */
export type PixelTransform = (pixels: Float32Array, count: number) => void;

export function batchOf(ds: ImageDataset, indices: ArrayLike<number>, transform?: PixelTransform): { x: TF.Tensor4D; y: TF.Tensor1D } {
  const p = pixelsPerSample(ds);
  const pixels = new Float32Array(indices.length * p);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    pixels.set(ds.images.subarray(indices[i] * p, (indices[i] + 1) * p), i * p);
    labels[i] = ds.labels[indices[i]];
  }
  transform?.(pixels, indices.length);
  return { x: tf.tensor4d(pixels, [indices.length, ...ds.sampleShape]), y: tf.tensor1d(labels, 'int32') };
}

/** The indices of `ds` in order, cut into batches of at most `batchSize` (the last one shorter). */
export function consecutiveBatches(ds: ImageDataset, batchSize: number): number[][] {
  const out: number[][] = [];
  for (let start = 0; start < size(ds); start += batchSize) {
    out.push(Array.from({ length: Math.min(batchSize, size(ds) - start) }, (_, i) => start + i));
  }
  return out;
}
