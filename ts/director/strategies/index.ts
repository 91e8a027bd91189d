import { FedAvg } from './fedavg.ts';
import type { AggregationStrategy } from './strategy.ts';

export type { AggregationStrategy, ClientUpdate } from './strategy.ts';

export function makeStrategy(name: 'fedavg'): AggregationStrategy {
  switch (name) {
    case 'fedavg': return new FedAvg();
  }
}
