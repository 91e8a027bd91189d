import type { ExperimentConfig } from '../../core/config/experiment.ts';
import { FedAvg } from './fedavg.ts';
import { CoordinateMedian } from './median.ts';
import type { AggregationStrategy } from './strategy.ts';
import { TrimmedMean } from './trimmed-mean.ts';

export type { AggregationStrategy, ClientUpdate } from './strategy.ts';

export function makeStrategy(aggregation: ExperimentConfig['aggregation']): AggregationStrategy {
  switch (aggregation.strategy) {
    case 'fedavg': return new FedAvg();
    case 'median': return new CoordinateMedian();
    case 'trimmed_mean': return new TrimmedMean(aggregation.trim_fraction);
  }
}
