/**
 * Kermany-style chest X-ray folders: <root>/<CLASS>/<file>.jpeg, any size, grayscale or RGB, resized to the
 * model's input. Decoding uses tfjs-node's native image decoder.
 */
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { DataFileError } from './npz.ts';
import type { ImageDataset } from './dataset.ts';
import { modelPixels, readXrayImage } from './xray-image.ts';

const IMAGE_EXTENSIONS = new Set(['.jpeg', '.jpg', '.png']);

export interface XrayFolderOptions {
  root: string;
  classes: string[];
  imageSize: [number, number];
  channels: 1 | 3;
  limit?: number;
  onProgress?: (done: number, total: number) => void;
}

export function listXrayFolder(root: string, classes: string[]): { file: string; label: number }[] {
  let folders: string[];
  try {
    folders = readdirSync(root).filter((name) => !name.startsWith('.') && statSync(join(root, name)).isDirectory());
  } catch (error) {
    throw new DataFileError(`${root}: cannot read the X-ray folder (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const unknown = folders.filter((f) => !classes.includes(f));
  if (unknown.length) {
    throw new DataFileError(`${root}: unknown class folder(s) ${unknown.join(', ')}; expected only ${classes.join(', ')}`);
  }
  const present = classes.filter((c) => folders.includes(c));
  if (!present.length) throw new DataFileError(`${root}: none of the class folders ${classes.join(', ')} exists`);
  const items: { file: string; label: number }[] = [];
  for (const cls of present) {
    for (const name of readdirSync(join(root, cls)).sort()) {
      if (name.startsWith('.')) continue;
      if (!IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) {
        throw new DataFileError(`${join(root, cls, name)}: not an image file (expected .jpeg, .jpg or .png)`);
      }
      items.push({ file: join(root, cls, name), label: classes.indexOf(cls) });
    }
  }
  return items;
}

export function decodeXray(file: string, imageSize: [number, number], channels: 1 | 3): Float32Array {
  const decoded = readXrayImage(file, channels);
  try {
    return modelPixels(decoded, imageSize);
  } finally {
    decoded.dispose();
  }
}

export function loadXrayFolder(options: XrayFolderOptions): ImageDataset {
  return loadLabelledImages(listXrayFolder(options.root, options.classes), options);
}

/** Decodes `items` (any readable X-ray format, xray-image.ts) into a dataset at the model's input size. */
export function loadLabelledImages(all: { file: string; label: number }[], options: XrayFolderOptions): ImageDataset {
  const { root, classes, imageSize, channels } = options;
  const items = options.limit ? all.slice(0, options.limit) : all;
  if (!items.length) throw new DataFileError(`${root}: no images found`);
  const perImage = imageSize[0] * imageSize[1] * channels;
  const images = new Float32Array(items.length * perImage);
  const labels = new Int32Array(items.length);
  items.forEach((item, i) => {
    images.set(decodeXray(item.file, imageSize, channels), i * perImage);
    labels[i] = item.label;
    options.onProgress?.(i + 1, items.length);
  });
  return { images, labels, sampleShape: [imageSize[0], imageSize[1], channels], classNames: classes, origin: root };
}
