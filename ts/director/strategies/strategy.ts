/**
 * An aggregation strategy turns the updates of one round into the next global model. Strategies see
 * weight deltas (local - global) and example counts; a secure-aggregation round hands them a pre-summed
 * delta instead of individual ones, through the same interface.
 */
import type { FlatWeights } from '../../core/weights.ts';

export interface ClientUpdate { envoy: string; examples: number; delta: FlatWeights }

export interface AggregationStrategy {
  readonly name: string;
  aggregate(global: FlatWeights, updates: ClientUpdate[]): FlatWeights;
}
