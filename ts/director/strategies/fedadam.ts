/**
 * FedAdam and FedYogi (Reddi et al. 2021, Algorithm 2): Adam-style steps on the mean delta, without bias
 * correction, as in the paper. m = beta_1 m + (1 - beta_1) delta; then
 *   FedAdam: v = beta_2 v + (1 - beta_2) delta^2
 *   FedYogi: v = v - (1 - beta_2) delta^2 sign(v - delta^2)   (v grows more slowly: steadier on noisy rounds)
 * and x += eta m / (sqrt(v) + tau). v starts at tau^2, as the paper's experiments do.
 */
import type { ServerOptimizerConfig } from '../../core/config/experiment.ts';
import { ServerOptimizer } from './server-optimizer.ts';

export class FedAdam extends ServerOptimizer {
  readonly name: string = 'fedadam';
  private m?: Float64Array;
  private v?: Float64Array;
  private readonly learningRate: number;

  constructor(protected readonly config: ServerOptimizerConfig, maxStepNorm: number) {
    super(maxStepNorm);
    this.learningRate = config.learning_rate ?? 0.01;
  }

  /** The second moment's new value at one coordinate. */
  protected secondMoment(v: number, squared: number): number {
    return this.config.beta_2 * v + (1 - this.config.beta_2) * squared;
  }

  protected step(delta: Float64Array): Float64Array {
    const { beta_1: beta1, tau } = this.config;
    const m = (this.m ??= new Float64Array(delta.length));
    const v = (this.v ??= new Float64Array(delta.length).fill(tau * tau));
    const step = new Float64Array(delta.length);
    for (let i = 0; i < delta.length; i++) {
      m[i] = beta1 * m[i] + (1 - beta1) * delta[i];
      v[i] = this.secondMoment(v[i], delta[i] * delta[i]);
      step[i] = (this.learningRate * m[i]) / (Math.sqrt(v[i]) + tau);
    }
    return step;
  }
}

export class FedYogi extends FedAdam {
  override readonly name = 'fedyogi';

  protected override secondMoment(v: number, squared: number): number {
    return v - (1 - this.config.beta_2) * squared * Math.sign(v - squared);
  }
}
