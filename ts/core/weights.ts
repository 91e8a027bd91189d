/**
 * Model weights as one flat Float32Array plus a manifest (name, shape per tensor). Flat vectors are what
 * aggregation, quantization and secure aggregation work on; the manifest lets a receiver check that a
 * payload fits its model before touching it.
 */
import { pack, unpack } from 'msgpackr';
import { tf } from './tf.ts';
import type * as TF from '@tensorflow/tfjs';
import type { LayersModel } from './model.ts';

export interface TensorInfo { name: string; shape: number[] }
export interface FlatWeights { manifest: TensorInfo[]; values: Float32Array }

export function readWeights(model: LayersModel): FlatWeights {
  const tensors = model.weights;
  const manifest = tensors.map((w) => ({ name: w.originalName, shape: [...w.shape] as number[] }));
  const total = manifest.reduce((n, t) => n + sizeOf(t.shape), 0);
  const values = new Float32Array(total);
  let offset = 0;
  for (const w of tensors) {
    const data = w.read().dataSync() as Float32Array;
    values.set(data, offset);
    offset += data.length;
  }
  return { manifest, values };
}

export function writeWeights(model: LayersModel, weights: FlatWeights): void {
  checkFits(model, weights);
  const tensors = toTensors(weights);
  model.setWeights(tensors);
  tf.dispose(tensors);
}

/** Each tensor of a flat vector, in manifest order; `values` is a view into `w.values`, not a copy. */
export function slicesOf(w: FlatWeights): (TensorInfo & { values: Float32Array })[] {
  let offset = 0;
  return w.manifest.map((t) => {
    const values = w.values.subarray(offset, offset + sizeOf(t.shape));
    offset += values.length;
    return { ...t, values };
  });
}

/** One slice by tensor name, or undefined. */
export function sliceNamed(w: FlatWeights, name: string): Float32Array | undefined {
  return slicesOf(w).find((t) => t.name === name)?.values;
}

/** The vector as tfjs tensors in manifest order (the caller disposes them). */
export function toTensors(w: FlatWeights): TF.Tensor[] {
  return slicesOf(w).map((t) => tf.tensor(t.values, t.shape, 'float32'));
}

export function checkFits(model: LayersModel, weights: FlatWeights): void {
  const expected = model.weights.map((w) => ({ name: w.originalName, shape: [...w.shape] as number[] }));
  if (expected.length !== weights.manifest.length) {
    throw new Error(`weights payload has ${weights.manifest.length} tensors, the model has ${expected.length}`);
  }
  expected.forEach((e, i) => {
    const got = weights.manifest[i];
    if (got.name !== e.name || got.shape.join('x') !== e.shape.join('x')) {
      throw new Error(`weights payload tensor ${i} is ${got.name} [${got.shape}], the model expects ${e.name} [${e.shape}]`);
    }
  });
  const total = expected.reduce((n, t) => n + sizeOf(t.shape), 0);
  if (weights.values.length !== total) {
    throw new Error(`weights payload has ${weights.values.length} values, the model expects ${total}`);
  }
}

export function encodeWeights(weights: FlatWeights): Uint8Array {
  const bytes = new Uint8Array(weights.values.buffer, weights.values.byteOffset, weights.values.byteLength);
  return pack({ manifest: weights.manifest, values: bytes });
}

export function decodeWeights(payload: Uint8Array): FlatWeights {
  let decoded: { manifest?: unknown; values?: unknown };
  try {
    decoded = unpack(payload);
  } catch (error) {
    throw new Error(`weights payload is not valid msgpack: ${(error as Error).message}`);
  }
  const { manifest, values } = decoded ?? {};
  if (!Array.isArray(manifest) || !(values instanceof Uint8Array)) {
    throw new Error('weights payload lacks its manifest or values');
  }
  if (values.byteLength % 4 !== 0) throw new Error(`weights payload has ${values.byteLength} bytes, not a whole number of float32`);
  // Copy into an aligned buffer: msgpackr may hand back a view at an odd offset.
  const aligned = new Float32Array(values.byteLength / 4);
  new Uint8Array(aligned.buffer).set(values);
  return { manifest: manifest as TensorInfo[], values: aligned };
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
