import test from 'ava';
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../ts/core/tf.ts';
import { buildModel } from '../ts/core/model.ts';
import { ModelSpecSchema } from '../ts/core/config/experiment.ts';
import { crossEntropy, forward, paramsOfModel, weightGradients, type BnMode } from '../ts/leakage/functional-model.ts';
import '../ts/leakage/second-order.ts';

/** Central finite difference of f along direction v at p, against the analytic <grad, v>. */
function directional(f: (p: TF.Tensor) => TF.Scalar, p: TF.Tensor, v: TF.Tensor, eps: number): { fd: number; exact: number } {
  return tf.tidy(() => {
    const plus = f(p.add(v.mul(eps))).dataSync()[0];
    const minus = f(p.sub(v.mul(eps))).dataSync()[0];
    const exact = tf.sum(tf.mul(tf.grad(f)(p), v)).dataSync()[0];
    return { fd: (plus - minus) / (2 * eps), exact };
  });
}

function close(t: { true: (c: boolean, m?: string) => void }, { fd, exact }: { fd: number; exact: number }, rel: number, what: string) {
  t.true(Math.abs(fd - exact) <= rel * Math.max(1e-3, Math.abs(exact)), `${what}: finite difference ${fd}, gradient ${exact}`);
}

const rand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

/** dW of a conv as tfjs computes it: the Conv2DBackpropFilter kernel. */
function backpropFilter(x: TF.Tensor4D, dy: TF.Tensor4D, w: TF.Tensor4D, stride: number, pad: 'same' | 'valid'): TF.Tensor4D {
  return tf.grad((wt: TF.Tensor) => tf.sum(tf.mul(dy, tf.conv2d(x, wt as TF.Tensor4D, stride, pad))))(w) as TF.Tensor4D;
}

for (const [stride, pad] of [[1, 'same'], [2, 'valid'], [2, 'same']] as const) {
  test(`Conv2DBackpropFilter gradient matches finite differences (stride ${stride}, ${pad})`, (t) => {
    const x = rand([2, 7, 7, 3], 1) as TF.Tensor4D;
    const w = rand([3, 3, 3, 4], 2) as TF.Tensor4D;
    const dy = rand(tf.conv2d(x, w, stride, pad).shape, 3) as TF.Tensor4D;
    const r = rand(w.shape, 4);
    // Bilinear in (x, dy): central differences are exact up to float rounding.
    close(t, directional((xi) => tf.sum(tf.mul(r, backpropFilter(xi as TF.Tensor4D, dy, w, stride, pad))), x, rand(x.shape, 5), 0.1), 1e-3, 'd/dx');
    close(t, directional((d) => tf.sum(tf.mul(r, backpropFilter(x, d as TF.Tensor4D, w, stride, pad))), dy, rand(dy.shape, 6), 0.1), 1e-3, 'd/ddy');
  });
}

/** dx of a max-pool: the MaxPoolGrad kernel. */
function poolBackprop(x: TF.Tensor4D, dy: TF.Tensor4D, size: number, stride: number, pad: 'same' | 'valid'): TF.Tensor4D {
  return tf.grad((xi: TF.Tensor) => tf.sum(tf.mul(dy, tf.maxPool(xi as TF.Tensor4D, size, stride, pad))))(x) as TF.Tensor4D;
}

for (const [size, stride, pad, ties] of [[3, 3, 'valid', false], [3, 2, 'same', false], [2, 2, 'valid', false], [3, 3, 'valid', true]] as const) {
  test(`MaxPoolGrad gradient matches finite differences (pool ${size}, stride ${stride}, ${pad}${ties ? ', ReLU ties' : ''})`, (t) => {
    // With ties (ReLU zeros) the routing of dy must follow TensorFlow's own tie-break, or this fails.
    const raw = rand([2, 9, 9, 2], 7) as TF.Tensor4D;
    const x = ties ? tf.relu(raw.sub(1)) as TF.Tensor4D : raw;
    const dy = rand(tf.maxPool(x, size, stride, pad).shape, 8) as TF.Tensor4D;
    const r = rand(x.shape, 9);
    close(t, directional((d) => tf.sum(tf.mul(r, poolBackprop(x, d as TF.Tensor4D, size, stride, pad))), dy, rand(dy.shape, 10), 0.1), 1e-3, 'd/ddy');
    // Piecewise constant in x: zero gradient, and a small step changes nothing.
    const gx = tf.grad((xi) => tf.sum(tf.mul(r, poolBackprop(xi as TF.Tensor4D, dy, size, stride, pad))))(x);
    t.is(tf.abs(gx).max().dataSync()[0], 0);
  });
}

test('Equal (via the gradient of logSumExp) twice-differentiates', (t) => {
  const z = rand([3, 4], 11);
  const f = (zi: TF.Tensor) => tf.sum(tf.square(tf.grad((u) => tf.sum(tf.mul(tf.logSumExp(u, 1), tf.tensor1d([1, 2, 3]))))(zi)));
  close(t, directional(f as (p: TF.Tensor) => TF.Scalar, z, rand(z.shape, 12), 1e-2), 1e-2, 'd/dz');
});

for (const kernel of ['Mean', 'Sum'] as const) {
  test(`${kernel}'s replacement gradient spreads dy over the reduced axes, and twice-differentiates`, (t) => {
    const reduce = (u: TF.Tensor, keep = false) => (kernel === 'Mean' ? tf.mean(u, [0, 2], keep) : tf.sum(u, [0, 2], keep));
    const x = rand([2, 3, 4, 5], 16);
    const w = rand([3, 5], 17);
    // d/dx Σ w·reduce(x) = w broadcast over the reduced axes (divided by their size, 8, for the mean).
    const got = tf.grad((u) => tf.sum(tf.mul(reduce(u), w)))(x);
    const want = tf.mul(tf.reshape(w, [1, 3, 1, 5]), tf.onesLike(x)).div(kernel === 'Mean' ? 8 : 1);
    t.true(tf.abs(tf.sub(got, want)).max().dataSync()[0] < 1e-6);
    // A batch-norm-like variance: its gradient differentiated again, against finite differences.
    const variance = (u: TF.Tensor) => reduce(tf.square(tf.sub(u, reduce(u, true))));
    const f = (xi: TF.Tensor) => tf.sum(tf.square(tf.grad((u) => tf.sum(tf.mul(variance(u), w)))(xi)));
    close(t, directional(f as (p: TF.Tensor) => TF.Scalar, x, rand(x.shape, 18), 1e-2), 1e-2, 'd/dx');
  });
}

const tiny = ModelSpecSchema.parse({ width: 3, seed: 4, input_size: [12, 12] });

for (const mode of ['train', 'eval'] as BnMode[]) {
  test(`gradient-matching loss of ConvNetBN (${mode} mode) differentiates w.r.t. the input, matching finite differences`, (t) => {
    const p = paramsOfModel(buildModel(tiny));
    const labels = tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2).cast('float32') as TF.Tensor2D;
    const target = weightGradients(p, tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 13) as TF.Tensor4D, labels, mode);
    const loss = (d: TF.Tensor) => tf.addN(weightGradients(p, d as TF.Tensor4D, labels, mode)
      .map((g, i) => tf.sum(tf.square(tf.sub(g, target[i]))))) as TF.Scalar;
    const dummy = tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 14);
    const v = rand(dummy.shape, 15);
    // Max-pool switches and ReLU kinks make the loss only piecewise smooth, with kinks close together:
    // central differences are valid only for steps below the distance to the nearest kink, so accept the
    // gradient if one of a few small steps agrees with it to 1%.
    const tries = [1e-4, 3e-5, 1e-5].map((eps) => directional(loss, dummy, v, eps));
    const ok = tries.some(({ fd, exact }) => Math.abs(fd - exact) <= 0.01 * Math.abs(exact));
    t.true(ok, tries.map(({ fd, exact }) => `fd ${fd} vs ${exact}`).join('; '));
  });
}

test('the functional ConvNetBN gives the layers model outputs, and the same second-order gradients', (t) => {
  // tfjs-layers' own batch norm: the fused training gradient the envoys train with (fast-batch-norm.ts) is
  // first-order only, and the lab never differentiates the layers model twice (it has this functional twin).
  const model = buildModel(tiny, {}, { fusedBatchNorm: false });
  const p = paramsOfModel(model);
  const x = tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 16) as TF.Tensor4D;
  for (const mode of ['eval', 'train'] as BnMode[]) {
    // eval first: the layers model's training-mode call updates its moving statistics.
    const a = (model.apply(x, { training: mode === 'train' }) as TF.Tensor).dataSync();
    const b = forward(p, x, mode).dataSync();
    t.true(a.every((v, i) => Math.abs(v - b[i]) < 1e-5), `${mode}: ${a} vs ${b}`);
  }
  const labels = tf.oneHot(tf.tensor1d([1, 0], 'int32'), 2).cast('float32') as TF.Tensor2D;
  const viaLayers = tf.grad((d: TF.Tensor) => {
    // Not tf.losses.softmaxCrossEntropy: its customGrad gives a wrong second derivative (measured here).
    const { grads } = tf.variableGrads(() => crossEntropy(model.apply(d, { training: true }) as TF.Tensor2D, labels));
    return tf.addN(Object.values(grads).map((v) => tf.sum(tf.square(v)))) as TF.Scalar;
  })(x).dataSync();
  const viaFunctional = tf.grad((d: TF.Tensor) =>
    tf.addN(weightGradients(p, d as TF.Tensor4D, labels, 'train').map((g) => tf.sum(tf.square(g)))) as TF.Scalar)(x).dataSync();
  const scale = Math.max(...viaLayers.map(Math.abs));
  t.true(viaLayers.every((v, i) => Math.abs(v - viaFunctional[i]) < 1e-3 * scale));
});

test('gradient-matching loss through PRECODE (sampled code, KL term) differentiates w.r.t. the input, matching finite differences', (t) => {
  // What an adaptive attack on a PRECODE model optimizes: the envoy's gradient includes beta·KL, and the
  // sampled code is replayed with known noise (the attacker's default, the mean code, is the smoother case).
  const spec = ModelSpecSchema.parse({ width: 3, seed: 4, input_size: [12, 12], precode: { enabled: true, code_size: 8, beta: 0.1 } });
  const base = paramsOfModel(buildModel(spec));
  t.truthy(base.precode);
  const p = { ...base, precodeTraining: { beta: 0.1, noise: rand([2, 8], 17) as TF.Tensor2D } };
  const labels = tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2).cast('float32') as TF.Tensor2D;
  const target = weightGradients(p, tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 18) as TF.Tensor4D, labels, 'train');
  const loss = (d: TF.Tensor) => tf.addN(weightGradients(p, d as TF.Tensor4D, labels, 'train')
    .map((g, i) => tf.sum(tf.square(tf.sub(g, target[i]))))) as TF.Scalar;
  const dummy = tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 19);
  const v = rand(dummy.shape, 20);
  // Piecewise smooth (max-pool, ReLU), as in the plain ConvNetBN test above.
  const tries = [1e-4, 3e-5, 1e-5].map((eps) => directional(loss, dummy, v, eps));
  t.true(tries.some(({ fd, exact }) => Math.abs(fd - exact) <= 0.01 * Math.abs(exact)), tries.map(({ fd, exact }) => `fd ${fd} vs ${exact}`).join('; '));
});
