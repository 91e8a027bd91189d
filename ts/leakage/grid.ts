/**
 * The picture of an attack: true images in the top row, reconstructions below (same column = matched
 * pair), scaled up with nearest-neighbour so 28x28 X-rays are visible, as a PNG.
 */
import { writeFileSync } from 'node:fs';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';

/** tf.node only exists on tfjs-node; the grid is a file on disk, so it needs the native backend. */
function encodePng(pixels: TF.Tensor3D): Promise<Uint8Array> {
  const node = (tf as unknown as { node?: { encodePng: (t: TF.Tensor3D) => Promise<Uint8Array> } }).node;
  if (!node) throw new Error('writing PNG grids needs tfjs-node (run `npm run setup`)');
  return node.encodePng(pixels);
}

export interface GridOptions { scale?: number; gap?: number }

/** Rows of images (each H*W*C in [0, 1]) as an 8-bit PNG. */
export async function writeGrid(path: string, rows: Float32Array[][], [h, w, c]: [number, number, number], o: GridOptions = {}): Promise<void> {
  const scale = o.scale ?? 4;
  const gap = o.gap ?? 2;
  const cols = Math.max(...rows.map((r) => r.length));
  const cellH = h * scale + gap;
  const cellW = w * scale + gap;
  const out = new Uint8Array(rows.length * cellH * cols * cellW * c).fill(255);
  const width = cols * cellW;
  rows.forEach((row, r) => row.forEach((img, col) => {
    for (let y = 0; y < h * scale; y++) {
      for (let x = 0; x < w * scale; x++) {
        for (let ch = 0; ch < c; ch++) {
          const v = img[(Math.floor(y / scale) * w + Math.floor(x / scale)) * c + ch];
          out[((r * cellH + y) * width + col * cellW + x) * c + ch] = Math.round(255 * Math.min(1, Math.max(0, v)));
        }
      }
    }
  }));
  const tensor = tf.tensor3d(out, [rows.length * cellH, width, c], 'int32');
  const png = await encodePng(tensor);
  tensor.dispose();
  writeFileSync(path, png);
}
