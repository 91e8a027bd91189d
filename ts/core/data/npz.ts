/**
 * NumPy .npz (a zip of .npy arrays) reading, and PneumoniaMNIST in MedMNIST's layout on top of it.
 * Every failure names the file and what is wrong with it.
 */
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import type { ImageDataset } from './dataset.ts';

export interface NdArray {
  dtype: string;
  shape: number[];
  data: Uint8Array | Int32Array | Float32Array | Float64Array | BigInt64Array | Int16Array | Uint16Array;
}

export class DataFileError extends Error {
  override name = 'DataFileError';
}

export function readNpz(path: string): Record<string, NdArray> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataFileError(`${path}: ${code === 'ENOENT' ? 'file not found' : (error as Error).message}` +
      (code === 'ENOENT' ? ' (run `secflow data fetch` to download PneumoniaMNIST)' : ''));
  }
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (error) {
    throw new DataFileError(`${path}: not a readable .npz (zip) file, truncated or corrupt: ${(error as Error).message}`);
  }
  const arrays: Record<string, NdArray> = {};
  for (const [name, content] of Object.entries(entries)) {
    if (!name.endsWith('.npy')) continue;
    arrays[name.slice(0, -4)] = parseNpy(content, `${path}:${name}`);
  }
  return arrays;
}

export function parseNpy(bytes: Uint8Array, where: string): NdArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new DataFileError(`${where}: not a .npy array`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new DataFileError(`${where}: unreadable .npy header`);
  if (fortran) throw new DataFileError(`${where}: Fortran-ordered arrays are not supported`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const kinds: Record<string, [number, (b: ArrayBuffer, n: number) => NdArray['data']]> = {
    '|u1': [1, (b, n) => new Uint8Array(b, 0, n)],
    '|b1': [1, (b, n) => new Uint8Array(b, 0, n)],
    '<i2': [2, (b, n) => new Int16Array(b, 0, n)],
    '<u2': [2, (b, n) => new Uint16Array(b, 0, n)],
    '<i4': [4, (b, n) => new Int32Array(b, 0, n)],
    '<f4': [4, (b, n) => new Float32Array(b, 0, n)],
    '<i8': [8, (b, n) => new BigInt64Array(b, 0, n)],
    '<f8': [8, (b, n) => new Float64Array(b, 0, n)],
  };
  const kind = kinds[descr];
  if (!kind) throw new DataFileError(`${where}: unsupported dtype ${descr}`);
  const [itemSize, make] = kind;
  const needed = count * itemSize;
  if (bytes.length - dataStart < needed) {
    throw new DataFileError(`${where}: truncated: shape (${shape}) needs ${needed} bytes, file has ${bytes.length - dataStart}`);
  }
  // Copy to an aligned buffer so typed-array views are legal whatever the zip offset was.
  const copy = bytes.slice(dataStart, dataStart + needed).buffer;
  return { dtype: descr, shape, data: make(copy, count) };
}

/** PneumoniaMNIST (MedMNIST v2): `<split>_images` (N, H, W[, C]) uint8 and `<split>_labels` (N, 1). */
export function loadPneumoniaMnist(path: string, split: 'train' | 'val' | 'test', limit?: number): ImageDataset {
  const arrays = readNpz(path);
  const images = arrays[`${split}_images`];
  const labels = arrays[`${split}_labels`];
  if (!images || !labels) {
    throw new DataFileError(`${path}: no ${split}_images/${split}_labels arrays (found: ${Object.keys(arrays).join(', ') || 'none'})`);
  }
  if (images.dtype !== '|u1' || (images.shape.length !== 3 && images.shape.length !== 4)) {
    throw new DataFileError(`${path}: ${split}_images must be uint8 (N, H, W) or (N, H, W, C); got ${images.dtype} (${images.shape})`);
  }
  const n = images.shape[0];
  if (labels.shape[0] !== n || labels.data.length !== n) {
    throw new DataFileError(`${path}: ${split}_labels has shape (${labels.shape}), expected (${n}, 1)`);
  }
  const [h, w] = images.shape.slice(1, 3);
  const c = images.shape[3] ?? 1;
  const keep = Math.min(n, limit ?? n);
  const pixels = new Float32Array(keep * h * w * c);
  const raw = images.data as Uint8Array;
  for (let i = 0; i < pixels.length; i++) pixels[i] = raw[i] / 255;
  const y = new Int32Array(keep);
  for (let i = 0; i < keep; i++) {
    const label = Number(labels.data[i]);
    if (label !== 0 && label !== 1) throw new DataFileError(`${path}: ${split}_labels[${i}] = ${label}, expected 0 or 1`);
    y[i] = label;
  }
  return { images: pixels, labels: y, sampleShape: [h, w, c], classNames: ['normal', 'pneumonia'], origin: `${path} (${split})` };
}
