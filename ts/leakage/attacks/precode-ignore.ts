/**
 * PRECODE's stochastic layer, ignored (the attack of arXiv 2208.04767 and 2309.04515): the bottleneck samples
 * noise the director never sees, which spoils matching the whole model's gradient, but the gradient reaching
 * the conv blocks from above is dL/df = δ · Wᵀ of the encoder, read off the update exactly (δ is the encoder's
 * bias gradient). Matching only the conv blocks' gradients under that fixed upstream gradient is Inverting
 * Gradients on a network without the stochastic layer: no noise, no KL term, no classifier to model.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { convGradients, trainableNamesOf } from '../functional-model.ts';
import { momentsDistance } from './bn-statistics.ts';
import { type AttackSetting, cosineDistance, type Reconstruction, totalVariation } from './common.ts';
import { boxedSignedAdam, type IgOptions } from './inverting-gradients.ts';

export function precodeIgnoreAttack(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, o: IgOptions): Reconstruction {
  if (!s.params.precode) throw new Error('the ignore-the-stochastic-layer attack needs a model with PRECODE');
  if (s.batch !== 1 || s.aggregate) throw new Error('the ignore-the-stochastic-layer attack reads one image\'s upstream gradient (batch 1)');
  const names = trainableNamesOf(s.params);
  const gb = observed[names.indexOf('precode/encoder/bias')];
  const blocks = s.params.convs.length * 3;
  const target = observed.slice(0, blocks);
  const upstream = tf.tidy(() => tf.matMul(tf.reshape(gb, [1, -1]), s.params.precode!.encoderKernel, false, true) as TF.Tensor2D);
  const objective = (x: TF.Tensor4D) => {
    const loss = tf.add(cosineDistance(convGradients(s.params, x, upstream, s.mode), target), tf.mul(o.tvWeight, totalVariation(x)));
    const bn = o.bnStatistics;
    return (bn ? tf.add(loss, tf.mul(bn.weight, momentsDistance(s.params, x, bn.target))) : loss) as TF.Scalar;
  };
  const result = boxedSignedAdam(s, objective, labels, o);
  upstream.dispose();
  return result;
}
