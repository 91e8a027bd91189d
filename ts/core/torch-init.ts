/**
 * PyTorch's default initialization for ConvNetBN's weights (`model.init: torch`): the original system was
 * PyTorch, and the leakage reference numbers were measured on an "untrained ConvNetBN" in PyTorch. PyTorch draws conv and linear weights (and
 * the linear bias) from U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the project's model uses He-normal convs and a
 * Glorot-uniform classifier, about 2.4x larger conv weights. That matters: with batch norm in inference
 * mode nothing rescales activations, and measured here the same IG/DLG that reach ~50 dB on PyTorch-style
 * weights stay under 21 dB on the He-normal ones — in PyTorch as in TensorFlow.js (bench/leakage_torch.py).
 */
import { tf } from './tf.ts';
import type * as TF from '@tensorflow/tfjs';
import { tfSeed } from './seeds.ts';

export function applyTorchDefaultInit(model: TF.LayersModel, seed: number): void {
  const values = model.weights.map((w, i) => {
    const name = w.originalName;
    const shape = [...w.shape] as number[];
    if (!/(kernel|classifier\/bias)$/.test(name)) return w.read().clone();
    // fan_in: kh*kw*in for a conv kernel [kh, kw, in, out], F for a dense kernel [F, classes] and its bias.
    const kernelShape = name === 'classifier/bias' ? model.getLayer('classifier').getWeights()[0].shape : shape;
    const fanIn = kernelShape.slice(0, -1).reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    return tf.randomUniform(shape, -bound, bound, 'float32', tfSeed(seed * 1000 + i));
  });
  model.setWeights(values);
  tf.dispose(values);
}
