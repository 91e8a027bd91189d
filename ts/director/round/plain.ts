/**
 * Plain aggregation: each envoy's update reaches the director in the clear and is checked one by one (shape,
 * finiteness, norm bound) and then against the rest of the cohort (admission.ts). One stage: training.
 */
import type { Subscription } from 'nats';
import type { TrainResult } from '../../core/messages.ts';
import { fetchBlob } from '../../core/transport/blobs.ts';
import { decodeWeights } from '../../core/weights.ts';
import { admittedExamples, screenedCohort, updateProblem } from '../admission.ts';
import type { ClientUpdate } from '../strategies/index.ts';
import type { Cohort, Stage } from './cohort.ts';
import type { RoundCollection, RoundContext } from './context.ts';
import { serveResults, type ResultAck } from './results.ts';
import type { RoundWorkflow } from './workflow.ts';

export class PlainWorkflow implements RoundWorkflow {
  private readonly updates: ClientUpdate[] = [];
  private readonly results: TrainResult[] = [];
  private readonly receiving = new Set<string>();
  private sub?: Subscription;

  constructor(private readonly ctx: RoundContext) {}

  taskExtras() { return {}; }

  stages(): Stage[] {
    return [{ name: 'result', timeoutMs: this.ctx.config.round_timeout_seconds * 1000, long: true }];
  }

  listen(cohort: Cohort): void {
    this.sub = serveResults(this.ctx, cohort, 'result', (result) => this.receive(cohort, result));
  }

  collection(cohort: Cohort): RoundCollection {
    const { kept, refused } = screenedCohort(this.updates, this.ctx);
    const out = new Set(refused.map((r) => r.envoy));
    return { updates: kept, results: this.results.filter((r) => !out.has(r.envoy)), dropped: [...cohort.dropped, ...refused] };
  }

  close(): void { this.sub?.unsubscribe(); }

  private async receive(cohort: Cohort, result: TrainResult): Promise<ResultAck> {
    const { bus, config, global, round } = this.ctx;
    if (!result.ok || !result.update) {
      cohort.drop(result.envoy, result.rule ? `it refused the round: ${result.error}` : `its training failed: ${result.error ?? 'no update'}`, result.rule);
      return { accepted: true };
    }
    // Results are handled concurrently: one envoy's result is fetched once, even if it is sent again meanwhile.
    if (this.receiving.has(result.envoy)) return { accepted: false, reason: `${result.envoy}'s result is being received already` };
    this.receiving.add(result.envoy);
    try {
      const delta = decodeWeights(await fetchBlob(bus, result.update, { maxBytes: 64 + 8 * global.values.length + 64 * global.manifest.length + 1024 }));
      if (!cohort.has(result.envoy)) return { accepted: false, reason: `${result.envoy} left round ${round + 1} while its update was fetched` };
      const problem = updateProblem(delta, global, config.aggregation.max_update_norm);
      if (problem) {
        cohort.drop(result.envoy, `its update was refused: ${problem}`);
        return { accepted: false, reason: problem };
      }
      const admitted = admittedExamples(result.envoy, result.examples, this.ctx.registry, bus.trust);
      if (admitted.note) this.ctx.log.warn(`round ${round + 1}: ${admitted.note}`);
      this.updates.push({ envoy: result.envoy, examples: admitted.examples, delta });
      this.results.push({ ...result, examples: admitted.examples });
      cohort.answer(result.envoy);
      return { accepted: true };
    } catch (error) {
      cohort.drop(result.envoy, `its update could not be received: ${(error as Error).message}`);
      return { accepted: false, reason: (error as Error).message };
    } finally {
      this.receiving.delete(result.envoy);
    }
  }
}
