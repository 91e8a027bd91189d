import type { ExperimentConfig } from '../../core/config/experiment.ts';
import { FedAvg } from './fedavg.ts';
import { FedAvgM } from './fedavgm.ts';
import { FedAdam, FedYogi } from './fedadam.ts';
import { CoordinateMedian } from './median.ts';
import type { AggregationStrategy } from './strategy.ts';
import { TrimmedMean } from './trimmed-mean.ts';

export type { AggregationStrategy, ClientUpdate } from './strategy.ts';

export function makeStrategy(aggregation: ExperimentConfig['aggregation']): AggregationStrategy {
  switch (aggregation.strategy) {
    case 'fedavg': return new FedAvg();
    case 'fedavgm': return new FedAvgM(aggregation.server, aggregation.max_update_norm);
    case 'fedadam': return new FedAdam(aggregation.server, aggregation.max_update_norm);
    case 'fedyogi': return new FedYogi(aggregation.server, aggregation.max_update_norm);
    case 'median': return new CoordinateMedian();
    case 'trimmed_mean': return new TrimmedMean(aggregation.trim_fraction);
  }
}
