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

/**
 * What the model sees of a decoded image, prepared as MedMNIST prepared PneumoniaMNIST (center crop, then
 * resize), so full-size X-rays look like the images the federation trained on: the central region with the
 * input's aspect ratio, box-averaged down to within 2x of the input (bilinear alone, from 1,500 px to 28,
 * would sample a few pixels and alias), then bilinear to the input, scaled to [0, 1] (pixel / 255).
 * On the shared pneumonia JPEGs and the demo's model: 8 of 9 called pneumonia, against 5 of 9 resized whole.
 */
export function modelPixels(decoded: TF.Tensor3D, imageSize: [number, number]): Float32Array {
  return tf.tidy(() => {
    let x = centerCrop(decoded, imageSize).toFloat();
    const box = Math.floor(Math.min(x.shape[0] / imageSize[0], x.shape[1] / imageSize[1]) / 2);
    if (box > 1) x = tf.avgPool(x, box, box, 'valid') as TF.Tensor3D;
    return tf.image.resizeBilinear(x, imageSize, true).div(255).clipByValue(0, 1).dataSync() as Float32Array;
  });
}

/** The central region of `decoded` with the aspect ratio of `imageSize`: the part of an X-ray the model sees. */
export function centerCrop(decoded: TF.Tensor3D, imageSize: [number, number]): TF.Tensor3D {
  const [height, width] = decoded.shape;
  const scale = Math.min(height / imageSize[0], width / imageSize[1]);
  const cropHeight = Math.min(height, Math.round(imageSize[0] * scale));
  const cropWidth = Math.min(width, Math.round(imageSize[1] * scale));
  return decoded.slice([Math.floor((height - cropHeight) / 2), Math.floor((width - cropWidth) / 2), 0], [cropHeight, cropWidth, -1]);
}
