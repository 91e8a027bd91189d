/**
 * Second-order gradients that tfjs-core 4.22 lacks. Gradient-inversion attacks differentiate a gradient
 * again: the backward kernels of the first gradient (Conv2DBackpropFilter, MaxPoolGrad) need gradients of
 * their own, which tfjs-core does not register. Importing this module registers them once per process.
 *
 * Found missing for ConvNetBN (conv2d -> batchNorm -> relu, maxPool, dense, softmax cross-entropy) by
 * differentiating a gradient-matching loss: Conv2DBackpropFilter, MaxPoolGrad, and Equal (met through the
 * gradient of Max in logSumExp); and Exp (in logSumExp) whose gradient is silently wrong when differentiated
 * again (see fromInputGrads). Relu, FusedBatchNorm, MatMul and Conv2DBackpropInput already have gradients
 * built from differentiable ops.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../core/tf.ts';

type Pad = 'valid' | 'same' | number;
type Pair = [number, number];

/**
 * Conv2DBackpropFilter(x, dy) = dW is bilinear in (x, dy). For an upstream gradient ddw on dW:
 *   d/dx  = conv2dTranspose(dy, ddw)   (how dW moves with the input: a backprop-input with filter ddw)
 *   d/ddy = conv2d(x, ddw)             (how dW moves with dy: the forward convolution with filter ddw)
 */
const conv2DBackpropFilterGrad: TF.GradConfig = {
  kernelName: 'Conv2DBackpropFilter',
  inputsToSave: ['x', 'dy'],
  gradFunc: (ddw, saved, attrs) => {
    const [x, dy] = saved as [TF.Tensor4D, TF.Tensor4D];
    const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as
      { strides: Pair | number; pad: Pad; dataFormat: string; dimRoundingMode?: string };
    if (dataFormat !== 'NHWC' || dimRoundingMode) throw new Error('Conv2DBackpropFilter gradient: only NHWC without dimRoundingMode');
    const filter = ddw as TF.Tensor4D;
    return {
      x: () => tf.conv2dTranspose(dy, filter, x.shape, strides, pad as 'valid' | 'same'),
      dy: () => tf.conv2d(x, filter, strides, pad as 'valid' | 'same'),
    };
  },
};

/**
 * MaxPoolGrad(dy, input, output) routes each dy to the argmax of its window: dx = Jᵀ dy, linear in dy
 * and piecewise constant in input. So d/ddy (for upstream ddx) is J ddx: for every window, ddx at that
 * window's argmax. d/dinput and d/doutput are zero almost everywhere.
 *
 * The argmax is found with ops: for each offset (i, j) inside the window take the strided slice of the
 * (padded) input; the first offset in row-major order whose value equals the pooled output wins, which is
 * the tie-break TensorFlow's MaxPoolGrad uses (ties are common after ReLU: all-zero windows).
 */
const maxPoolGradGrad: TF.GradConfig = {
  kernelName: 'MaxPoolGrad',
  inputsToSave: ['input', 'output'],
  gradFunc: (ddx, saved, attrs) => {
    const [input, output] = saved as [TF.Tensor4D, TF.Tensor4D];
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as
      { filterSize: Pair | number; strides: Pair | number; pad: Pad; dimRoundingMode?: string };
    if (dimRoundingMode) throw new Error('MaxPoolGrad gradient: dimRoundingMode is not supported');
    return {
      dy: () => gatherAtArgmax(ddx as TF.Tensor4D, input, output, pair(filterSize), pair(strides), pad),
      input: () => tf.zerosLike(input),
      output: () => tf.zerosLike(output),
    };
  },
};

function pair(v: Pair | number): Pair {
  return typeof v === 'number' ? [v, v] : v;
}

/** For every pooling window, the value of `values` where `input` attains the window's max `output`. */
export function gatherAtArgmax(values: TF.Tensor4D, input: TF.Tensor4D, output: TF.Tensor4D,
  [fh, fw]: Pair, [sh, sw]: Pair, pad: Pad): TF.Tensor4D {
  return tf.tidy(() => {
    const [, outH, outW] = output.shape;
    const [top, left] = padBefore(input.shape, output.shape, [fh, fw], [sh, sw], pad);
    const padSpec = (b: number, h: number, l: number, w: number): Array<[number, number]> =>
      [[0, 0], [b, Math.max(0, h)], [l, Math.max(0, w)], [0, 0]];
    const needH = (outH - 1) * sh + fh - input.shape[1] - top;
    const needW = (outW - 1) * sw + fw - input.shape[2] - left;
    // Padding never wins the max: pad the input with -inf-like values and the gathered values with 0.
    const xp = tf.pad(input, padSpec(top, needH, left, needW), -3.4e38);
    const vp = tf.pad(values, padSpec(top, needH, left, needW), 0);
    let result = tf.zerosLike(output) as TF.Tensor4D;
    let taken = tf.zerosLike(output).cast('bool') as TF.Tensor4D;
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const begin = [0, i, j, 0];
        const end = [xp.shape[0], i + (outH - 1) * sh + 1, j + (outW - 1) * sw + 1, xp.shape[3]];
        const stride = [1, sh, sw, 1];
        const xs = tf.stridedSlice(xp, begin, end, stride) as TF.Tensor4D;
        const vs = tf.stridedSlice(vp, begin, end, stride) as TF.Tensor4D;
        const wins = tf.logicalAnd(tf.equal(xs, output), tf.logicalNot(taken));
        result = tf.where(wins, vs, result);
        taken = tf.logicalOr(taken, wins);
      }
    }
    return result;
  });
}

/** Rows/columns of padding before the input, as TensorFlow computes them for 'same', 'valid' or a number. */
function padBefore(inShape: number[], outShape: number[], [fh, fw]: Pair, [sh, sw]: Pair, pad: Pad): Pair {
  if (pad === 'valid') return [0, 0];
  if (typeof pad === 'number') return [pad, pad];
  const total = (inSize: number, outSize: number, f: number, s: number) => Math.max(0, (outSize - 1) * s + f - inSize);
  return [Math.floor(total(inShape[1], outShape[1], fh, sh) / 2), Math.floor(total(inShape[2], outShape[2], fw, sw) / 2)];
}

/**
 * Comparisons are piecewise constant: zero gradient. tfjs-core registers this only for GreaterEqual, but the
 * gradients of Max/Min (used by logSumExp, hence cross-entropy) and of MaxPoolGrad below are built with
 * Equal, so differentiating them again meets it.
 */
const comparisonGrads: TF.GradConfig[] = ['Equal', 'NotEqual', 'Greater', 'Less', 'LessEqual', 'LogicalAnd', 'LogicalOr', 'LogicalNot']
  .map((kernelName) => ({
    kernelName,
    inputsToSave: kernelName === 'LogicalNot' ? ['x'] : ['a', 'b'],
    gradFunc: (_dy: TF.Tensor | TF.Tensor[], saved: TF.Tensor[]): Record<string, () => TF.Tensor> => kernelName === 'LogicalNot'
      ? { x: () => tf.zerosLike(saved[0]).cast('float32') }
      : { a: () => tf.zerosLike(saved[0]).cast('float32'), b: () => tf.zerosLike(saved[1]).cast('float32') },
  }));

/**
 * Gradients that tfjs-core computes from the op's saved *output* are silently wrong when differentiated
 * again: the engine clones saved outputs inside the kernel call, so on the tape the clone's node precedes
 * the node that produced the output, and backprop's reachability pass never connects it to the input
 * (d/dx of exp'(x) came back as "f does not depend on x"; through logSumExp the second derivative had the
 * wrong sign). These replacements recompute the output from the saved input instead, at the cost of one
 * extra elementwise op. Max/Min (used by logSumExp) save their output too, but only to build a mask whose
 * gradient is zero anyway; MaxPool's is handled by MaxPoolGrad's gradient above.
 */
const fromInputGrads: TF.GradConfig[] = [
  { kernelName: 'Exp', inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as TF.Tensor, tf.exp(x)) }) },
  {
    kernelName: 'Sigmoid', inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => { const s = tf.sigmoid(x); return tf.mul(dy as TF.Tensor, tf.mul(s, tf.sub(1, s))); } }),
  },
  {
    kernelName: 'Tanh', inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy as TF.Tensor, tf.sub(1, tf.square(tf.tanh(x)))) }),
  },
  {
    kernelName: 'Softmax', inputsToSave: ['logits'],
    gradFunc: (dy, [logits], attrs) => ({
      logits: () => {
        const { dim } = attrs as unknown as { dim: number };
        const y = tf.softmax(logits, dim);
        const dyTimesY = tf.mul(dy as TF.Tensor, y);
        return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y));
      },
    }),
  },
  {
    kernelName: 'LogSoftmax', inputsToSave: ['logits'],
    gradFunc: (dy, [logits], attrs) => ({
      logits: () => {
        const { axis } = attrs as unknown as { axis: number };
        return tf.sub(dy as TF.Tensor, tf.mul(tf.sum(dy as TF.Tensor, axis, true), tf.softmax(logits, axis)));
      },
    }),
  },
];

/**
 * Same values as tfjs-core's Mean and Sum gradients, but broadcast against `onesLike(x)` (a TensorFlow kernel)
 * instead of `ones(x.shape)`, which tfjs fills element by element in JavaScript and copies into TensorFlow.
 * Batch norm's moments reduce activations of 64 × 28 × 28 × 32 floats, several times per attack step:
 * measured on the 192-image secure aggregate, that JavaScript fill was a third of an Inverting Gradients step.
 */
const reductionGrads: TF.GradConfig[] = (['Mean', 'Sum'] as const).map((kernelName) => ({
  kernelName,
  inputsToSave: ['x'],
  gradFunc: (dy, [x], attrs) => ({
    x: () => {
      const { axis } = attrs as unknown as { axis: number | number[] };
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const expandedShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const spread = tf.mul(tf.reshape(dy as TF.Tensor, expandedShape), tf.onesLike(x));
      if (kernelName === 'Sum') return spread;
      return tf.div(spread, axes.reduce((n, a) => n * x.shape[a], 1));
    },
  }),
}));

let registered = false;

/** Registers the missing gradients once; safe to call from every module that needs them. */
export function registerSecondOrderGradients(): void {
  if (registered) return;
  registered = true;
  for (const config of [conv2DBackpropFilterGrad, maxPoolGradGrad, ...comparisonGrads]) {
    // Do not shadow a gradient that a future tfjs-core provides itself.
    if (!tf.getGradient(config.kernelName)) tf.registerGradient(config);
  }
  // Same values as tfjs-core's own, but twice-differentiable (or faster); replacing them (quietly: tfjs warns on override).
  for (const config of [...fromInputGrads, ...reductionGrads]) {
    if (tf.getGradient(config.kernelName)) tf.unregisterGradient(config.kernelName);
    tf.registerGradient(config);
  }
}

registerSecondOrderGradients();
