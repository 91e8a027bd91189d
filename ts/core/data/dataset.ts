/** An in-memory labelled image set, pixels scaled to [0, 1], laid out NHWC as TensorFlow.js expects. */
export interface ImageDataset {
  /** N * H * W * C pixels in [0, 1]. */
  images: Float32Array;
  labels: Int32Array;
  /** [H, W, C] of one sample. */
  sampleShape: [number, number, number];
  classNames: string[];
  /** Human-readable origin, used in errors and shard descriptors. */
  origin: string;
}

export function size(ds: ImageDataset): number {
  return ds.labels.length;
}

export function pixelsPerSample(ds: ImageDataset): number {
  return ds.sampleShape[0] * ds.sampleShape[1] * ds.sampleShape[2];
}

export function subset(ds: ImageDataset, indices: ArrayLike<number>, origin = ds.origin): ImageDataset {
  const p = pixelsPerSample(ds);
  const images = new Float32Array(indices.length * p);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    images.set(ds.images.subarray(j * p, (j + 1) * p), i * p);
    labels[i] = ds.labels[j];
  }
  return { ...ds, images, labels, origin };
}

export function classCounts(ds: ImageDataset): number[] {
  const counts = new Array(ds.classNames.length).fill(0);
  for (const y of ds.labels) counts[y]++;
  return counts;
}
