/**
 * An aggregation strategy turns the updates of one round into the next global model. Strategies see
 * weight deltas (local - global) and example counts; a secure-aggregation round hands them a pre-summed
 * delta instead of individual ones, through the same interface. Updates reach a strategy only after the
 * director's admission checks (admission.ts): finite, the model's shape, within the norm bound.
 */
import type { FlatWeights } from '../../core/weights.ts';

export interface ClientUpdate {
  envoy: string;
  examples: number;
  delta: FlatWeights;
  /** A secure aggregate's members and the example counts each was weighed by (the director knows them). */
  members?: Record<string, number>;
}

export interface AggregationStrategy {
  readonly name: string;
  aggregate(global: FlatWeights, updates: ClientUpdate[]): FlatWeights;
}

export function checkLengths(global: FlatWeights, updates: ClientUpdate[]): void {
  for (const u of updates) {
    if (u.delta.values.length !== global.values.length) {
      throw new Error(`update from ${u.envoy} has ${u.delta.values.length} values, the model ${global.values.length}`);
    }
  }
}
