import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { loadPneumoniaMnist, readNpz } from '../ts/core/data/npz.ts';
import { classCounts } from '../ts/core/data/dataset.ts';
import { PNEUMONIAMNIST, tempDir } from './helpers/paths.ts';

test('loads every split of the shared PneumoniaMNIST with the documented sizes and class balance', (t) => {
  const expected = { train: [1213, 3494], val: [135, 389], test: [234, 390] } as const;
  for (const split of ['train', 'val', 'test'] as const) {
    const ds = loadPneumoniaMnist(PNEUMONIAMNIST, split);
    t.deepEqual(ds.sampleShape, [28, 28, 1]);
    t.deepEqual(classCounts(ds), [...expected[split]]);
    t.is(ds.images.length, ds.labels.length * 784);
    const max = ds.images.reduce((a, b) => Math.max(a, b), 0);
    t.true(max <= 1 && max > 0.5, `pixels scaled to [0, 1], max ${max}`);
  }
});

test('limit keeps the first N examples', (t) => {
  const ds = loadPneumoniaMnist(PNEUMONIAMNIST, 'val', 10);
  t.is(ds.labels.length, 10);
});

/** Builds a .npy byte array by hand, as numpy writes version 1.0 files. */
function npy(descr: string, shape: number[], data: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

test('reads any file of the MedMNIST layout, not only the shared one', (t) => {
  const dir = tempDir();
  const images = new Uint8Array(3 * 4 * 4).map((_, i) => i * 5);
  const file = join(dir, 'tiny.npz');
  writeFileSync(file, zipSync({
    'test_images.npy': npy('|u1', [3, 4, 4], images),
    'test_labels.npy': npy('|u1', [3, 1], new Uint8Array([0, 1, 1])),
  }));
  const ds = loadPneumoniaMnist(file, 'test');
  t.deepEqual(ds.sampleShape, [4, 4, 1]);
  t.deepEqual([...ds.labels], [0, 1, 1]);
  t.is(ds.images[1], Math.fround(5 / 255));
});

test('a missing file names the file and how to get it', (t) => {
  const error = t.throws(() => loadPneumoniaMnist('/nonexistent/pneumoniamnist.npz', 'train'));
  t.regex(error!.message, /\/nonexistent\/pneumoniamnist\.npz: file not found.*secflow data fetch/);
});

test('a truncated file is reported as truncated or corrupt, naming the file', (t) => {
  const dir = tempDir();
  const file = join(dir, 'cut.npz');
  const bytes = readFileSync(PNEUMONIAMNIST);
  writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const error = t.throws(() => readNpz(file));
  t.regex(error!.message, /cut\.npz: .*(truncated|corrupt)/);
});

test('an array whose data is shorter than its shape says so', (t) => {
  const dir = tempDir();
  const file = join(dir, 'short.npz');
  writeFileSync(file, zipSync({
    'val_images.npy': npy('|u1', [10, 28, 28], new Uint8Array(100)),
    'val_labels.npy': npy('|u1', [10, 1], new Uint8Array(10)),
  }));
  const error = t.throws(() => loadPneumoniaMnist(file, 'val'));
  t.regex(error!.message, /short\.npz:val_images\.npy: truncated/);
});

test('wrong shapes, dtypes and labels are named', (t) => {
  const dir = tempDir();
  const cases: [string, Record<string, Uint8Array>, RegExp][] = [
    ['nolabels', { 'val_images.npy': npy('|u1', [2, 2, 2], new Uint8Array(8)) }, /no val_images\/val_labels arrays/],
    ['labelcount', { 'val_images.npy': npy('|u1', [2, 2, 2], new Uint8Array(8)), 'val_labels.npy': npy('|u1', [3, 1], new Uint8Array(3)) }, /val_labels has shape \(3,1\), expected \(2, 1\)/],
    ['floatimages', { 'val_images.npy': npy('<f4', [1, 2, 2], new Uint8Array(16)), 'val_labels.npy': npy('|u1', [1, 1], new Uint8Array(1)) }, /must be uint8/],
    ['badlabel', { 'val_images.npy': npy('|u1', [1, 2, 2], new Uint8Array(4)), 'val_labels.npy': npy('|u1', [1, 1], new Uint8Array([7])) }, /val_labels\[0\] = 7, expected 0 or 1/],
  ];
  for (const [name, entries, pattern] of cases) {
    const file = join(dir, `${name}.npz`);
    writeFileSync(file, zipSync(entries));
    const error = t.throws(() => loadPneumoniaMnist(file, 'val'), undefined, name);
    t.regex(error!.message, pattern, name);
    t.true(error!.message.includes(file), `${name}: names the file`);
  }
});
