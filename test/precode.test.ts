import test from 'ava';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { ModelSpecSchema, TrainingSchema, type ModelSpec } from '../ts/core/config/experiment.ts';
import { loadPneumoniaMnist } from '../ts/core/data/npz.ts';
import { buildModel, type LayersModel } from '../ts/core/model.ts';
import { evaluate, trainLocal } from '../ts/core/training.ts';
import { decodeWeights, encodeWeights, readWeights, writeWeights } from '../ts/core/weights.ts';
import {
  NoiseStream, PRECODE_WEIGHT_NAMES, PrecodeBottleneck, precodeLayerOf, precodeLossOf, seedPrecodeNoise,
} from '../ts/core/defenses/precode.ts';
import { crossEntropy, forward, paramsOfModel, trainableNamesOf, weightGradients } from '../ts/leakage/functional-model.ts';
import { PNEUMONIAMNIST } from './helpers/paths.ts';

// ----- a bottleneck on 3 features with a 2-dimensional code, small enough to compute by hand -----

const IN = 3;
const K = 2;
// Encoder kernel [IN, 2K]: columns 0-1 give mu, columns 2-3 the raw std (before softplus).
const ENC_KERNEL = [[0.5, -0.2, 0.1, -0.3], [0.3, 0.4, -0.2, 0.2], [-0.1, 0.2, 0.3, 0.1]];
const ENC_BIAS = [0.1, -0.1, -0.5, 0.2];
const DEC_KERNEL = [[1.0, -0.5, 0.25], [0.5, 0.75, -1.0]];
const DEC_BIAS = [0.01, 0.02, 0.03];
const X = [[1, 2, 3], [-1, 0.5, 0]];

/** The layer alone, as a functional model (whose call runs in tf.tidy, like any model's). */
function tinyModel(beta: number, noiseSeed?: number): { model: LayersModel; layer: PrecodeBottleneck } {
  const layer = new PrecodeBottleneck({ codeSize: K, beta, seed: 1, noiseSeed });
  const input = tf.input({ shape: [IN] });
  const model = tf.model({ inputs: input, outputs: layer.apply(input) as TF.SymbolicTensor });
  layer.setWeights([tf.tensor2d(ENC_KERNEL), tf.tensor1d(ENC_BIAS), tf.tensor2d(DEC_KERNEL), tf.tensor1d(DEC_BIAS)]);
  return { model, layer };
}

const matVec = (row: number[], m: number[][], bias: number[]) => bias.map((b, j) => b + row.reduce((s, v, i) => s + v * m[i][j], 0));
const softplus = (v: number) => Math.log1p(Math.exp(v));

/** mu and std of each example, by hand. */
function handStats(x: number[][]): { mu: number[][]; std: number[][] } {
  const stats = x.map((row) => matVec(row, ENC_KERNEL, ENC_BIAS));
  return { mu: stats.map((s) => s.slice(0, K)), std: stats.map((s) => s.slice(K).map(softplus)) };
}

function closeTo(t: { true: (c: boolean, m?: string) => void }, got: ArrayLike<number>, want: number[], tol: number, what: string) {
  const ok = got.length === want.length && want.every((v, i) => Math.abs(got[i] - v) <= tol);
  t.true(ok, `${what}: got [${Array.from(got)}], want [${want}]`);
}

test('PRECODE at inference is deterministic and equals decoder(encoder mean)', (t) => {
  const { model } = tinyModel(1e-3);
  const x = tf.tensor2d(X);
  const a = (model.apply(x, { training: false }) as TF.Tensor).dataSync();
  const b = (model.apply(x, { training: false }) as TF.Tensor).dataSync();
  t.deepEqual(Array.from(a), Array.from(b));
  const want = handStats(X).mu.flatMap((mu) => matVec(mu, DEC_KERNEL, DEC_BIAS));
  closeTo(t, a, want, 1e-5, 'inference output');
});

test('PRECODE in training samples mu + std·eps with the seeded noise, and the noise varies per call', (t) => {
  const { model } = tinyModel(1e-3, 7);
  const x = tf.tensor2d(X);
  const first = (model.apply(x, { training: true }) as TF.Tensor).dataSync();
  const second = (model.apply(x, { training: true }) as TF.Tensor).dataSync();
  t.true(first.some((v, i) => v !== second[i]), 'two training calls drew the same noise');
  // A stream with the layer's seed replays its draws: check the first call by hand.
  const eps = new NoiseStream(7).next([X.length, K]).arraySync();
  const { mu, std } = handStats(X);
  const want = mu.flatMap((m, b) => matVec(m.map((v, k) => v + std[b][k] * eps[b][k]), DEC_KERNEL, DEC_BIAS));
  closeTo(t, first, want, 1e-5, 'training output');
  // Reseeding restarts the stream.
  seedPrecodeNoise(model, 7);
  t.deepEqual(Array.from((model.apply(x, { training: true }) as TF.Tensor).dataSync()), Array.from(first));
});

test('the KL term is PRECODE\'s: -1/2 Σ(1 + 2 log std - mu² - std²), batch mean, in bits, times beta', (t) => {
  const beta = 0.25;
  const { model } = tinyModel(beta, 1);
  const loss = precodeLossOf(model)!;
  t.throws(() => loss(), { message: /without a training-mode forward pass/ });
  tf.tidy(() => { model.apply(tf.tensor2d(X), { training: true }); });
  const { mu, std } = handStats(X);
  const perExample = mu.map((m, b) => -0.5 * m.reduce((s, v, k) => s + 1 + 2 * Math.log(std[b][k]) - v * v - std[b][k] ** 2, 0));
  const klBits = perExample.reduce((a, b) => a + b, 0) / X.length / Math.LN2;
  closeTo(t, loss().dataSync(), [beta * klBits], 1e-6, 'beta·KL');
  // Each pass's KL is read once: a second read would silently add a stale, gradient-free constant.
  t.throws(() => loss(), { message: /without a training-mode forward pass/ });
});

test('the KL gradient reaches the encoder through the model\'s tidy (and matches its closed form)', (t) => {
  const beta = 0.5;
  const { model } = tinyModel(beta, 3);
  const loss = precodeLossOf(model)!;
  const before = tf.memory().numTensors;
  const { grads, value } = tf.variableGrads(() => {
    model.apply(tf.tensor2d(X), { training: true });
    return loss();
  });
  const byName = new Map(model.trainableWeights.map((w) => [w.originalName, grads[w.name]]));
  // d(beta·KL)/d(encoder bias): beta/(B ln 2) Σ_b mu for the mean half; beta/(B ln 2) Σ_b (std - 1/std)·sigmoid(raw).
  const { mu, std } = handStats(X);
  const sigmoidOfRaw = (s: number) => 1 - Math.exp(-s); // sigmoid(raw) = 1 - exp(-softplus(raw))
  const scale = beta / (X.length * Math.LN2);
  const want = [
    ...[0, 1].map((k) => scale * mu.reduce((s, m) => s + m[k], 0)),
    ...[0, 1].map((k) => scale * std.reduce((s, sd) => s + (sd[k] - 1 / sd[k]) * sigmoidOfRaw(sd[k]), 0)),
  ];
  closeTo(t, byName.get('precode/encoder/bias')!.dataSync(), want, 1e-5, 'encoder bias gradient');
  // The KL does not depend on the decoder.
  const decoder = byName.get('precode/decoder/kernel');
  t.true(decoder === undefined || decoder.abs().max().dataSync()[0] === 0);
  tf.dispose([value, ...Object.values(grads)]);
  // Only the layer's one kept KL scalar outlives the step.
  t.true(tf.memory().numTensors - before <= 1, `${tf.memory().numTensors - before} tensors leaked`);
});

// ----- PRECODE inside ConvNetBN -----

const spec = (precode: Partial<ModelSpec['precode']> = {}, seed = 2, architecture: ModelSpec['architecture'] = 'convnet_bn'): ModelSpec =>
  ModelSpecSchema.parse({ architecture, width: 4, seed, precode: { enabled: true, code_size: 32, ...precode } });
const train = loadPneumoniaMnist(PNEUMONIAMNIST, 'train', 400);
const val = loadPneumoniaMnist(PNEUMONIAMNIST, 'val', 200);
const images = (n: number) => tf.tensor4d(train.images.slice(0, n * 784), [n, 28, 28, 1]);

test('buildModel inserts PRECODE before the classifier, with its weights named and ordered as documented', (t) => {
  const model = buildModel(spec());
  const names = model.trainableWeights.map((w) => w.originalName);
  const at = names.indexOf(PRECODE_WEIGHT_NAMES[0]);
  t.deepEqual(names.slice(at, at + 4), PRECODE_WEIGHT_NAMES);
  t.deepEqual(names.slice(at + 4), ['classifier/kernel', 'classifier/bias']);
  // Flatten width 2w·9·9 = 72·9 = 648 for w = 4 on 28×28; the code is K = 32.
  t.deepEqual(model.getLayer('precode').getWeights().map((w) => w.shape), [[648, 64], [64], [32, 648], [648]]);
  // The same seed gives the same initial bottleneck (every envoy starts from the director's weights anyway).
  t.deepEqual(Array.from(readWeights(buildModel(spec())).values), Array.from(readWeights(model).values));
  t.is(precodeLayerOf(buildModel(ModelSpecSchema.parse({ width: 4 }))), undefined);
  t.is(precodeLossOf(buildModel(ModelSpecSchema.parse({ width: 4 }))), undefined);
});

test('a PRECODE model restores from a weights checkpoint and from its saved topology with identical inference', async (t) => {
  const model = buildModel(spec());
  await trainLocal(model, train, { config: TrainingSchema.parse({ batch_size: 50, local_epochs: 0.25 }) });
  const x = images(8);
  const want = (model.apply(x, { training: false }) as TF.Tensor).dataSync();
  // Checkpoint path (director's checkpoints, envoy updates): flat weights through msgpack into a fresh model.
  const restored = buildModel(spec({}, 9));
  writeWeights(restored, decodeWeights(encodeWeights(readWeights(model))));
  t.deepEqual(Array.from((restored.apply(x, { training: false }) as TF.Tensor).dataSync()), Array.from(want));
  // Topology + weights (tfjs's own format): the registered layer class deserializes.
  let artifacts: TF.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => { artifacts = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
  t.true(precodeLayerOf(loaded) instanceof PrecodeBottleneck);
  t.is(precodeLayerOf(loaded)!.codeSize, 32);
  t.deepEqual(Array.from((loaded.apply(x, { training: false }) as TF.Tensor).dataSync()), Array.from(want));
});

test('the KL term pulls the code towards N(0, I): beta > 0 trains the encoder differently and lowers the KL', async (t) => {
  const run = async (beta: number) => {
    const model = buildModel(spec({ beta }));
    seedPrecodeNoise(model, 11);
    await trainLocal(model, train, { config: TrainingSchema.parse({ learning_rate: 0.003, batch_size: 50, local_epochs: 1 }) });
    seedPrecodeNoise(model, 12);
    const kl = tf.tidy(() => {
      model.apply(images(64), { training: true });
      return precodeLossOf(model)!().dataSync()[0] / beta;
    });
    return { kl, encoder: model.getLayer('precode').getWeights()[0].dataSync() };
  };
  const plain = await run(1e-9); // effectively no KL term, but still a positive beta to read the KL back
  const pulled = await run(1);
  t.true(pulled.encoder.some((v, i) => v !== plain.encoder[i]));
  t.true(pulled.kl < 0.5 * plain.kl, `KL after training: beta=1 ${pulled.kl} bits, beta≈0 ${plain.kl} bits`);
});

test('ConvNetBN with PRECODE learns pneumonia from X-rays (validation ROC-AUC well above chance)', async (t) => {
  const model = buildModel(spec({ code_size: 256, beta: 1e-3 }));
  seedPrecodeNoise(model, 1);
  const result = await trainLocal(model, train, { config: TrainingSchema.parse({ learning_rate: 0.003, batch_size: 32, local_epochs: 3 }) });
  t.is(result.steps, 39);
  const metrics = evaluate(model, val);
  t.true(metrics.roc_auc! > 0.8, `validation ROC-AUC ${metrics.roc_auc!}`);
});

for (const architecture of ['convnet_bn', 'convnet_gap'] as const) test(`the functional ${architecture} with PRECODE matches the layers model: outputs (eval; train with the same noise) and gradients`, (t) => {
  // tfjs-layers' own batch norm, the arithmetic the twin writes out: TensorFlow's fused kernel (what envoys
  // train with, fast-batch-norm.ts) rounds equal inputs unequally now and then, so a max-pool after it may
  // route a tie's gradient to another of the tied pixels (an equally valid subgradient, not an error).
  const model = buildModel(spec({ beta: 0.1 }, 5, architecture), {}, { fusedBatchNorm: false });
  const p = paramsOfModel(model);
  t.deepEqual(trainableNamesOf(p), model.trainableWeights.map((w) => w.originalName));
  const x = images(4);
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => Array.from(a).every((v, i) => Math.abs(v - b[i]) <= tol);
  // eval first: the layers model's training-mode call updates its moving statistics.
  const evalLayers = (model.apply(x, { training: false }) as TF.Tensor).dataSync();
  t.true(close(forward(p, x, 'eval').dataSync(), evalLayers, 1e-5), 'eval outputs');
  // Training: the attacker without the envoy's noise uses the mean; with it, it replays the sample.
  seedPrecodeNoise(model, 21);
  const trainLayers = (model.apply(x, { training: true }) as TF.Tensor).dataSync();
  const noise = new NoiseStream(21).next([4, 32]);
  t.false(close(forward(p, x, 'train').dataSync(), trainLayers, 1e-5), 'the mean code should differ from a sample');
  const replay = { ...p, precodeTraining: { beta: 0.1, noise } };
  t.true(close(forward(replay, x, 'train').dataSync(), trainLayers, 1e-5), 'train outputs with the same noise');
  // The envoy's gradient of cross-entropy + beta·KL, in trainable-weight order.
  const labels = tf.oneHot(tf.tensor1d([0, 1, 1, 0], 'int32'), 2).cast('float32') as TF.Tensor2D;
  seedPrecodeNoise(model, 21);
  const loss = precodeLossOf(model)!;
  const { grads } = tf.variableGrads(() => crossEntropy(model.apply(x, { training: true }) as TF.Tensor2D, labels).add(loss()) as TF.Scalar);
  const functional = weightGradients(replay, x, labels, 'train');
  model.trainableWeights.forEach((w, i) => {
    const a = grads[w.name].dataSync();
    const scale = Math.max(1e-6, ...Array.from(a, Math.abs));
    t.true(close(functional[i].dataSync(), a, 1e-4 * scale), `gradient of ${w.originalName}`);
  });
});
