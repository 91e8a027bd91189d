/** FedAvgM (Hsu et al. 2019): server momentum on the mean delta. m = beta_1 m + delta; x += eta m. */
import type { ServerOptimizerConfig } from '../../core/config/experiment.ts';
import { ServerOptimizer } from './server-optimizer.ts';

export class FedAvgM extends ServerOptimizer {
  readonly name = 'fedavgm';
  private momentum?: Float64Array;
  private readonly learningRate: number;

  constructor(private readonly config: ServerOptimizerConfig, maxStepNorm: number) {
    super(maxStepNorm);
    this.learningRate = config.learning_rate ?? 1;
  }

  protected step(delta: Float64Array): Float64Array {
    const m = (this.momentum ??= new Float64Array(delta.length));
    for (let i = 0; i < delta.length; i++) m[i] = this.config.beta_1 * m[i] + delta[i];
    return m.map((v) => this.learningRate * v);
  }
}
