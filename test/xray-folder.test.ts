import test from 'ava';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadXrayFolder } from '../ts/core/data/xray-folder.ts';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { centerCrop, modelPixels } from '../ts/core/data/xray-image.ts';
import { tempDir, XRAY_SAMPLES } from './helpers/paths.ts';

const PNEUMONIA_DIR = join(XRAY_SAMPLES, 'PNEUMONIA');
const samples = readdirSync(PNEUMONIA_DIR).filter((f) => f.endsWith('.jpeg')).sort();

test('loads the real full-size chest X-rays, resized to the model input, grayscale', (t) => {
  const ds = loadXrayFolder({ root: XRAY_SAMPLES, classes: ['NORMAL', 'PNEUMONIA'], imageSize: [28, 28], channels: 1 });
  t.is(ds.labels.length, samples.length);
  t.true(ds.labels.every((y) => y === 1), 'all samples are in PNEUMONIA, label 1');
  t.deepEqual(ds.sampleShape, [28, 28, 1]);
  t.is(ds.images.length, samples.length * 28 * 28);
  const mean = ds.images.reduce((a, b) => a + b, 0) / ds.images.length;
  t.true(mean > 0.1 && mean < 0.9, `an X-ray is neither black nor white (mean ${mean})`);
});

test('RGB loading at another size gives three channels', (t) => {
  const ds = loadXrayFolder({ root: XRAY_SAMPLES, classes: ['NORMAL', 'PNEUMONIA'], imageSize: [64, 48], channels: 3, limit: 2 });
  t.deepEqual(ds.sampleShape, [64, 48, 3]);
  t.is(ds.images.length, 2 * 64 * 48 * 3);
});

function folderWith(files: Record<string, Buffer | string>): string {
  const root = tempDir();
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

test('an unknown class folder is an error naming it', (t) => {
  const root = folderWith({ 'COVID/a.jpeg': readFileSync(join(PNEUMONIA_DIR, samples[0])) });
  const error = t.throws(() => loadXrayFolder({ root, classes: ['NORMAL', 'PNEUMONIA'], imageSize: [28, 28], channels: 1 }));
  t.regex(error!.message, /unknown class folder\(s\) COVID/);
});

test('a corrupt or truncated JPEG is an error naming the file', (t) => {
  const whole = readFileSync(join(PNEUMONIA_DIR, samples[0]));
  const root = folderWith({ 'PNEUMONIA/ok.jpeg': whole, 'PNEUMONIA/zz-broken.jpeg': Buffer.from('this is not a jpeg at all') });
  const error = t.throws(() => loadXrayFolder({ root, classes: ['NORMAL', 'PNEUMONIA'], imageSize: [28, 28], channels: 1 }));
  t.regex(error!.message, /zz-broken\.jpeg: corrupt or truncated image/);
});

test('an empty image file and a stray non-image file are named', (t) => {
  const root = folderWith({ 'NORMAL/empty.jpeg': Buffer.alloc(0) });
  t.regex(t.throws(() => loadXrayFolder({ root, classes: ['NORMAL'], imageSize: [28, 28], channels: 1 }))!.message, /empty\.jpeg: empty file/);
  const root2 = folderWith({ 'NORMAL/notes.txt': 'hello' });
  t.regex(t.throws(() => loadXrayFolder({ root: root2, classes: ['NORMAL'], imageSize: [28, 28], channels: 1 }))!.message, /notes\.txt: not an image file/);
});

test('a missing folder is named', (t) => {
  const error = t.throws(() => loadXrayFolder({ root: '/nonexistent/xrays', classes: ['NORMAL'], imageSize: [28, 28], channels: 1 }));
  t.regex(error!.message, /\/nonexistent\/xrays: cannot read the X-ray folder \(ENOENT\)/);
});

test('the folder loader keeps copies of real files intact', (t) => {
  const root = tempDir();
  mkdirSync(join(root, 'PNEUMONIA'));
  copyFileSync(join(PNEUMONIA_DIR, samples[1]), join(root, 'PNEUMONIA', 'x.jpeg'));
  const ds = loadXrayFolder({ root, classes: ['NORMAL', 'PNEUMONIA'], imageSize: [16, 16], channels: 1 });
  t.is(ds.labels.length, 1);
});

test('modelPixels crops the centre to the input aspect ratio and averages before resizing (no aliasing)', (t) => {
  // 100x300: the central 100x100 black, white bands either side; the model must see only the black square.
  const banded = tf.tidy(() => tf.concat([tf.fill([100, 100, 1], 255), tf.zeros([100, 100, 1]), tf.fill([100, 100, 1], 255)], 1) as TF.Tensor3D);
  t.true(modelPixels(banded, [28, 28]).every((v) => v === 0));
  t.deepEqual(centerCrop(banded, [28, 28]).shape, [100, 100, 1]);
  banded.dispose();
  // A one-pixel checkerboard at 1,400 px: plain bilinear would sample a few pixels (values near 0 or 1); the
  // box average first gives the true mean grey everywhere.
  const checker = tf.tidy(() => {
    const row = tf.range(0, 1400).mod(2);
    return row.expandDims(1).add(row.expandDims(0)).mod(2).mul(255).expandDims(2) as TF.Tensor3D;
  });
  const pixels = modelPixels(checker, [28, 28]);
  t.true(pixels.every((v) => Math.abs(v - 0.5) < 0.01), `min ${Math.min(...pixels)}, max ${Math.max(...pixels)}`);
  checker.dispose();
});
