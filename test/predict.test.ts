/** The trained model as a clinician uses it: the exported bundle, Grad-CAM, and `secflow predict`. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel } from '../ts/core/model.ts';
import { loadModelBundle, ModelBundleError, saveModelBundle } from '../ts/core/model-bundle.ts';
import { predictPositive } from '../ts/core/training.ts';
import { SECFLOW_BIN } from '../ts/local/roles.ts';
import { gradCam } from '../ts/predict/grad-cam.ts';
import { PNEUMONIAMNIST, tempDir, XRAY_SAMPLES } from './helpers/paths.ts';

const SPEC = ModelSpecSchema.parse({ architecture: 'convnet_gap', width: 4, seed: 3, normalization: 'group', precode: { enabled: true } });
const XRAY = join(XRAY_SAMPLES, 'PNEUMONIA', 'person1946_bacteria_4874.jpeg');

test('a saved model bundle loads back with the same predictions, PRECODE and group norm included', async (t) => {
  const dir = tempDir();
  const model = buildModel(SPEC);
  await saveModelBundle(dir, model);
  const loaded = await loadModelBundle(dir);
  const ds = loadPneumoniaMnist(PNEUMONIAMNIST, 'test', 16);
  t.deepEqual(Array.from(predictPositive(loaded, ds)).map((p) => p.toFixed(5)), Array.from(predictPositive(model, ds)).map((p) => p.toFixed(5)));
  t.true(loaded.layers.some((l) => /precode/i.test(l.getClassName())), 'the PRECODE layer survives the round trip');
});

test('a damaged model bundle is refused with an error naming the problem', async (t) => {
  const dir = tempDir();
  await saveModelBundle(dir, buildModel(SPEC));
  truncateSync(join(dir, 'weights.bin'), 100);
  await t.throwsAsync(loadModelBundle(dir), { instanceOf: ModelBundleError, message: /weights\.bin: 100 bytes where the manifest needs \d+ \(truncated/ });
  writeFileSync(join(dir, 'model.json'), '{"modelTopology": ');
  await t.throwsAsync(loadModelBundle(dir), { instanceOf: ModelBundleError, message: /model\.json: not valid JSON/ });
  await t.throwsAsync(loadModelBundle(tempDir()), { instanceOf: ModelBundleError, message: /no model\.json/ });
});

test("Grad-CAM's probability is the model's own and its map lies in [0, 1] on the last conv block's grid", (t) => {
  const model = buildModel(ModelSpecSchema.parse({ architecture: 'convnet_gap', width: 4, seed: 5 }));
  const ds = loadPneumoniaMnist(PNEUMONIAMNIST, 'test', 4);
  const expected = predictPositive(model, ds);
  for (let i = 0; i < 4; i++) {
    const x = tf.tensor4d(ds.images.subarray(i * 784, (i + 1) * 784), [1, 28, 28, 1]);
    const { probability, cam } = gradCam(model, x);
    t.true(Math.abs(probability - expected[i]) < 1e-5, `image ${i}: ${probability} vs ${expected[i]}`);
    const values = cam.dataSync();
    t.true(values.every((v) => v >= 0 && v <= 1));
    const peak = Math.max(...values);
    t.true(peak === 0 || Math.abs(peak - 1) < 1e-6, 'scaled to a peak of 1 (or all 0)');
    t.is(cam.shape.length, 2);
    t.true(cam.shape[0] < 28 && cam.shape[0] > 1, `a coarse feature grid (${cam.shape})`);
    x.dispose();
    cam.dispose();
  }
});

test('secflow predict: a probability, the decision at the card threshold and a heat map per image; an unreadable image fails alone', async (t) => {
  const dir = tempDir();
  await saveModelBundle(dir, buildModel(SPEC));
  writeFileSync(join(dir, 'model-card.json'), JSON.stringify({
    model: { input: { height: 28, width: 28, channels: 1 }, classes: ['normal', 'pneumonia'] },
    decision_threshold: { value: 0.3, source: 'validation' },
  }));
  const bad = join(tempDir(), 'broken.jpeg');
  writeFileSync(bad, 'not an image');
  const out = tempDir();
  const r = spawnSync(SECFLOW_BIN, ['predict', '--model', dir, '--out', out, '--json', XRAY, bad], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 1, 'exit status 1: one image could not be read');
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.length, 2);
  const [good, failed] = lines;
  t.is(good.image, XRAY);
  t.is(good.threshold, 0.3);
  t.is(good.decision, good.probability >= 0.3 ? 'pneumonia' : 'normal');
  t.true(good.probability > 0 && good.probability < 1);
  t.true(existsSync(good.heat_map));
  t.deepEqual([...readFileSync(good.heat_map).subarray(1, 4)], [...Buffer.from('PNG')]);
  t.is(failed.image, bad);
  t.regex(failed.error, /broken\.jpeg/);

  const none = spawnSync(SECFLOW_BIN, ['predict', '--model', tempDir(), XRAY], { encoding: 'utf8', timeout: 120_000 });
  t.is(none.status, 1);
  t.regex(none.stderr, /no exported model/);
});
