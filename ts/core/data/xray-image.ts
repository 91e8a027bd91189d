/**
 * One X-ray image file, whatever its format, as decoded pixels (0-255, [height, width, channels]): DICOM
 * (recognised by its "DICM" marker, whatever the file is called) through dicom.ts, PNG and JPEG through
 * TensorFlow's image decoder. Training folders and `secflow predict` both read images here, so a model sees
 * the same pixels in both.
 */
import { readFileSync } from 'node:fs';
import type * as TF from '@tensorflow/tfjs';
import { decodeDicom, isDicom } from './dicom.ts';
import { DataFileError } from './npz.ts';
import { tf } from '../tf.ts';

export function readXrayImage(file: string, channels: 1 | 3): TF.Tensor3D {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new DataFileError(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (bytes.length === 0) throw new DataFileError(`${file}: empty file`);
  return isDicom(bytes) ? decodeDicom(bytes, file, channels).pixels : decodeImageBytes(bytes, file, channels);
}

/** PNG or JPEG bytes (read from `file`, named in errors) as decoded pixels: 0-255, [height, width, channels]. */
export function decodeImageBytes(bytes: Uint8Array, file: string, channels: 1 | 3): TF.Tensor3D {
  const node = (tf as unknown as { node?: { decodeImage(b: Uint8Array, c: number): TF.Tensor3D } }).node;
  if (!node) throw new DataFileError(`${file}: decoding X-ray images needs the tfjs-node backend (run npm run setup)`);
  try {
    return node.decodeImage(bytes, channels);
  } catch (error) {
    throw new DataFileError(`${file}: corrupt or truncated image: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** What the model sees of a decoded image: resized bilinearly to its input, scaled to [0, 1] (as PneumoniaMNIST's pixel / 255). */
export function modelPixels(decoded: TF.Tensor3D, imageSize: [number, number]): Float32Array {
  return tf.tidy(() => tf.image.resizeBilinear(decoded, imageSize, true).div(255).clipByValue(0, 1).dataSync() as Float32Array);
}

