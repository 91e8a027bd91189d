/**
 * An adaptive attack on PRECODE: the bottleneck's encoder is a dense layer on the flattened conv features
 * f, so for one image its weight gradient is the outer product f ⊗ δ and its bias gradient is δ (whatever
 * noise the envoy drew and whatever the KL term adds to δ). The director divides one by the other and
 * holds f exactly (Geiping et al. 2020, sec. 3, analytic inversion of a dense layer; Scheliga et al. note
 * it for PRECODE's own encoder). What is left is to find an image whose conv features are f: a feature
 * inversion, far easier than gradient matching, here with the IG optimizer (signed Adam in [0, 1] + TV),
 * plus the batch-norm statistics the update reveals.
 */
import type * as TF from '@tensorflow/tfjs';
import { tf } from '../../core/tf.ts';
import { convFeatures, trainableNamesOf, type BatchMoments } from '../functional-model.ts';
import { type AttackSetting, type Reconstruction, totalVariation } from './common.ts';
import { momentsDistance } from './bn-statistics.ts';
import { boxedSignedAdam, type IgOptions } from './inverting-gradients.ts';

/** f = ∂L/∂W · δ / (δ·δ): the least-squares solution of ∂L/∂W = f ⊗ δ, exact for a single image. */
export function featuresFromEncoderGradient(s: AttackSetting, observed: TF.Tensor[]): TF.Tensor2D {
  if (!s.params.precode) throw new Error('the adaptive PRECODE attack needs a model with PRECODE');
  if (s.batch !== 1) throw new Error(`the adaptive PRECODE attack inverts single-image updates (batch ${s.batch} given)`);
  const names = trainableNamesOf(s.params);
  const [gW, gb] = ['precode/encoder/kernel', 'precode/encoder/bias'].map((n) => observed[names.indexOf(n)]);
  return tf.tidy(() => tf.div(tf.matMul(gW as TF.Tensor2D, tf.reshape(gb, [-1, 1])), tf.sum(tf.square(gb))).reshape([1, -1]) as TF.Tensor2D);
}

export function precodeAdaptiveAttack(s: AttackSetting, observed: TF.Tensor[], labels: Int32Array, o: IgOptions & { bnStatistics?: { target: BatchMoments[]; weight: number } }): Reconstruction {
  const target = featuresFromEncoderGradient(s, observed);
  const scale = tf.tidy(() => tf.sum(tf.square(target)).add(1e-12));
  const objective = (x: TF.Tensor4D) => {
    const match = tf.div(tf.sum(tf.squaredDifference(convFeatures(s.params, x, s.mode), target)), scale);
    const loss = tf.add(match, tf.mul(o.tvWeight, totalVariation(x)));
    const bn = o.bnStatistics;
    return (bn ? tf.add(loss, tf.mul(bn.weight, momentsDistance(s.params, x, bn.target))) : loss) as TF.Scalar;
  };
  const result = boxedSignedAdam(s, objective, labels, o);
  tf.dispose([target, scale]);
  return result;
}
