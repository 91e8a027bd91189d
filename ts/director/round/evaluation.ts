/**
 * The evaluation round after the last training round: every envoy evaluates the final model on its own
 * validation split and answers with metrics and operating points (core/operating-points.ts), no update. What
 * comes back is metrics only, the same whether the experiment runs secure aggregation or not.
 */
import type { Subscription } from 'nats';
import type { TrainResult } from '../../core/messages.ts';
import type { Cohort, Stage } from './cohort.ts';
import type { RoundCollection, RoundContext } from './context.ts';
import { serveResults, type ResultAck } from './results.ts';
import type { RoundWorkflow } from './workflow.ts';

/** Inference on a validation split is seconds; this also covers fetching the model. */
const EVALUATION_TIMEOUT_MS = 120_000;

export class EvaluationWorkflow implements RoundWorkflow {
  private readonly results: TrainResult[] = [];
  private sub?: Subscription;

  constructor(private readonly ctx: RoundContext) {}

  taskExtras() { return { evaluate: true as const }; }

  stages(): Stage[] {
    return [{ name: 'evaluation', timeoutMs: Math.min(EVALUATION_TIMEOUT_MS, this.ctx.config.round_timeout_seconds * 1000) }];
  }

  listen(cohort: Cohort): void {
    this.sub = serveResults(this.ctx, cohort, 'evaluation', (result) => this.receive(cohort, result));
  }

  collection(cohort: Cohort): RoundCollection {
    return { updates: [], results: this.results, dropped: cohort.dropped };
  }

  close(): void { this.sub?.unsubscribe(); }

  private receive(cohort: Cohort, result: TrainResult): ResultAck {
    if (result.update) {
      cohort.drop(result.envoy, 'it sent an update with its evaluation');
      return { accepted: false, reason: 'an evaluation carries no update' };
    }
    if (!result.ok || !result.operating_points) {
      cohort.drop(result.envoy, result.rule ? `it refused the evaluation: ${result.error}` : `its evaluation failed: ${result.error ?? 'no operating points'}`, result.rule);
      return { accepted: true };
    }
    // One participant must not steer the threshold: its counts cannot exceed the validation split it registered.
    const registered = this.ctx.registry.record(result.envoy)?.descriptor.counts.val ?? 0;
    const counted = result.operating_points.positives + result.operating_points.negatives;
    if (counted !== registered) {
      cohort.drop(result.envoy, `its evaluation counts ${counted} validation images, it registered ${registered}`);
      return { accepted: false, reason: `operating points over ${counted} images, ${registered} registered` };
    }
    this.results.push(result);
    cohort.answer(result.envoy);
    return { accepted: true };
  }
}
