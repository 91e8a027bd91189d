/**
 * The DICOM reader against files written by pydicom (an independent implementation) from a real chest
 * X-ray JPEG: every readable variant shows the JPEG's own pixels, every bad file fails with its own message,
 * and no message carries the patient's name or ID. Then DICOM folders train, and predict gives the same
 * probability for the JPEG and its DICOMs.
 */
import test from 'ava';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentSchema } from '../ts/core/config/experiment.ts';
import { DataSourceSchema } from '../ts/core/config/data-source.ts';
import { loadDataSource } from '../ts/core/data/load.ts';
import { readXrayImage } from '../ts/core/data/xray-image.ts';
import { buildModel } from '../ts/core/model.ts';
import { trainLocal } from '../ts/core/training.ts';
import { tf } from '../ts/core/tf.ts';
import { exportFinalModel } from '../ts/director/model-card.ts';
import { RunFolder } from '../ts/director/run-folder.ts';
import { loadPredictor, predictImages } from '../ts/predict/predict.ts';
import { tempDir } from './helpers/paths.ts';
import { PATIENT_ID, PATIENT_NAME, SOURCE_JPEG, writeTestDicoms } from './helpers/pydicom.ts';

const fixtures = writeTestDicoms();
const file = (name: string) => join(fixtures.dir, name);

const READABLE = [
  'explicit_le.dcm', 'implicit_le.dcm', 'explicit_be.dcm', 'explicit_be_16bit.dcm', 'deflated.dcm', 'jpeg_baseline.dcm',
  'monochrome1.dcm', 'rescale_window_16bit.dcm', 'signed_16bit.dcm', 'voi_lut_16bit.dcm', 'rle.dcm',
];

for (const name of READABLE) {
  test(`${name} (pydicom) shows exactly the JPEG's pixels`, (t) => {
    const pixels = readXrayImage(file(name), 1);
    t.deepEqual(pixels.shape, [fixtures.rows, fixtures.columns, 1]);
    const values = pixels.dataSync();
    pixels.dispose();
    let worst = 0;
    for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - fixtures.pixels[i]));
    t.is(worst, 0, `largest pixel difference ${worst}`);
  });
}

test('a grey DICOM read as RGB repeats its grey in three channels', (t) => {
  const rgb = readXrayImage(file('explicit_le.dcm'), 3);
  t.deepEqual(rgb.shape, [fixtures.rows, fixtures.columns, 3]);
  const v = rgb.slice([100, 200, 0], [1, 1, 3]).dataSync();
  rgb.dispose();
  t.deepEqual(Array.from(v), [fixtures.pixels[100 * fixtures.columns + 200], fixtures.pixels[100 * fixtures.columns + 200], fixtures.pixels[100 * fixtures.columns + 200]]);
});

const BAD: [string, RegExp][] = [
  ['bad_jpeg2000.dcm', /bad_jpeg2000\.dcm: transfer syntax JPEG 2000 Lossless \(1\.2\.840\.10008\.1\.2\.4\.90\) is not supported; readable: .*RLE Lossless/],
  ['bad_no_pixels.dcm', /bad_no_pixels\.dcm: no pixel data \(7FE0,0010\)/],
  ['bad_ct.dcm', /bad_ct\.dcm: modality 'CT' is not a projection X-ray/],
  ['bad_truncated.dcm', /bad_truncated\.dcm: corrupt or truncated DICOM file/],
];

for (const [name, message] of BAD) {
  test(`${name}: a clear error, without the patient's name or ID`, (t) => {
    const error = t.throws(() => readXrayImage(file(name), 1));
    t.regex(error!.message, message);
    t.false(error!.message.includes(PATIENT_NAME) || error!.message.includes('DOE') || error!.message.includes(PATIENT_ID), error!.message);
  });
}

test('a file named .dcm that is not DICOM is named as no image', (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, 'scan.dcm'), 'PATIENT DOE^JANE this is a text file');
  t.regex(t.throws(() => readXrayImage(join(dir, 'scan.dcm'), 1))!.message, /scan\.dcm: corrupt or truncated image/);
});

test('a dicom_folder source trains, with labels from sub-folders or from a CSV', async (t) => {
  const root = tempDir();
  mkdirSync(join(root, 'NORMAL'), { recursive: true });
  mkdirSync(join(root, 'PNEUMONIA', 'study-1'), { recursive: true });
  copyFileSync(file('explicit_le.dcm'), join(root, 'NORMAL', 'IM0001')); // no extension, as PACS exports often are
  copyFileSync(file('rle.dcm'), join(root, 'PNEUMONIA', 'study-1', 'IM0002'));
  copyFileSync(file('monochrome1.dcm'), join(root, 'PNEUMONIA', 'IM0003.dcm'));
  const byFolder = loadDataSource(DataSourceSchema.parse({ kind: 'dicom_folder', root }));
  t.deepEqual(Array.from(byFolder.labels), [0, 1, 1]);
  t.deepEqual(byFolder.sampleShape, [28, 28, 1]);
  // Three DICOMs of the same X-ray: the same 28x28 input, whatever the encoding.
  const perImage = 28 * 28;
  t.deepEqual(Array.from(byFolder.images.subarray(0, perImage)), Array.from(byFolder.images.subarray(2 * perImage, 3 * perImage)));

  writeFileSync(join(root, 'labels.csv'), 'file,label\nNORMAL/IM0001,PNEUMONIA\n"PNEUMONIA/study-1/IM0002",0\n');
  const byCsv = loadDataSource(DataSourceSchema.parse({ kind: 'dicom_folder', root, labels_csv: join(root, 'labels.csv') }));
  t.deepEqual(Array.from(byCsv.labels), [1, 0]);
  const model = buildModel(ExperimentSchema.parse({ name: 'dicom', rounds: 1, model: { width: 4 } }).model);
  const before = model.getWeights().map((w) => w.dataSync().slice());
  const result = await trainLocal(model, byCsv, { config: ExperimentSchema.parse({ name: 'dicom', rounds: 1, training: { batch_size: 2 } }).training });
  t.is(result.examples, 2);
  t.true(model.getWeights().some((w, i) => w.dataSync().some((v, k) => v !== before[i][k])), 'the model trained on the DICOM images');

  writeFileSync(join(root, 'bad.csv'), 'file,label\nNORMAL/IM0001,COVID\n');
  t.regex(t.throws(() => loadDataSource(DataSourceSchema.parse({ kind: 'dicom_folder', root, labels_csv: join(root, 'bad.csv') })))!.message,
    /bad\.csv line 2: label 'COVID' is not one of NORMAL, PNEUMONIA/);
  writeFileSync(join(root, 'missing.csv'), 'file,label\nNORMAL/IM9999,0\n');
  t.regex(t.throws(() => loadDataSource(DataSourceSchema.parse({ kind: 'dicom_folder', root, labels_csv: join(root, 'missing.csv') })))!.message,
    /missing\.csv line 2: .*IM9999 does not exist/);
  t.regex(t.throws(() => DataSourceSchema.parse({ kind: 'dicom_folder', root, label_csv: 'x.csv' }))!.message, /label_csv/);
});

test('secflow predict gives the JPEG and its DICOMs the same probability and a heat map each', async (t) => {
  const run = tempDir();
  const config = ExperimentSchema.parse({ name: 'dicom-predict', rounds: 1, model: { architecture: 'convnet_gap', width: 4 } });
  const model = buildModel(config.model);
  await exportFinalModel({ federation: 'test', config, model, folder: new RunFolder(run), failedRounds: [] });
  const predictor = await loadPredictor(run);
  const out = join(run, 'heatmaps');
  const images = [SOURCE_JPEG, file('explicit_le.dcm'), file('jpeg_baseline.dcm'), file('rle.dcm'), file('rescale_window_16bit.dcm'), file('bad_ct.dcm')];
  const { predictions, failures } = await predictImages(predictor, images, out);
  t.is(predictions.length, 5);
  for (const p of predictions.slice(1)) t.true(Math.abs(p.probability - predictions[0].probability) <= 1e-4, `${p.image}: ${p.probability} vs ${predictions[0].probability}`);
  for (const p of predictions) {
    t.true(existsSync(p.heat_map), p.heat_map);
    const png = (tf as unknown as { node: { decodePng(b: Uint8Array): import('@tensorflow/tfjs').Tensor3D } }).node.decodePng(readFileSync(p.heat_map));
    const side = Math.min(fixtures.rows, fixtures.columns, 512); // the square the model saw, at most 512 px
    t.deepEqual(png.shape, [side, side, 3]);
    png.dispose();
  }
  t.is(new Set(predictions.map((p) => p.heat_map)).size, 5, 'one heat map per image');
  t.deepEqual(failures.map((f) => f.image), [file('bad_ct.dcm')]);
  t.regex(failures[0].error, /modality 'CT'/);
  model.dispose();
  predictor.model.dispose();
});
