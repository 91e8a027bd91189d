/**
 * How a round's updates reach the director: in the clear (plain.ts) or only as a secure sum (secure.ts).
 * A workflow adds its part to every task, listens for what the envoys send back, names its stages and,
 * once they closed, hands over the round's collection. The round itself (index.ts) is the same for both.
 */
import type { TrainTask } from '../../core/messages.ts';
import type { Cohort, Stage } from './cohort.ts';
import type { RoundCollection } from './context.ts';

export interface RoundWorkflow {
  /** What this workflow adds to `envoy`'s task (secure aggregation's round parameters). */
  taskExtras(envoy: string): Partial<TrainTask>;
  /** Sees the complete tasks before any goes out (secure aggregation binds each sum's keys to its task's digest). */
  bind?(taskFor: (envoy: string) => TrainTask): void;
  /** Subscribes to the envoys' answers; called before any task goes out. */
  listen(cohort: Cohort): void;
  stages(cohort: Cohort): Stage[];
  /** The round's outcome once every stage closed (raises RoundFailure when there is none). */
  collection(cohort: Cohort): RoundCollection | Promise<RoundCollection>;
  close(cohort: Cohort): void;
}
