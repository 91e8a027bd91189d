/**
 * One round's collection step: hand every participant a training task, then gather their updates until
 * all have answered, the round times out, or the ones still missing have gone silent (an envoy that
 * vanishes mid-round must not stall the federation).
 */
import { randomUUID } from 'node:crypto';
import type { ExperimentConfig } from '../core/config/experiment.ts';
import type { Logger } from '../core/log.ts';
import { kinds, type TrainResult, type TrainTask } from '../core/messages.ts';
import { progress } from '../core/progress.ts';
import { subjects } from '../core/subjects.ts';
import type { Bus } from '../core/transport/bus.ts';
import { fetchBlob, type OfferedBlob } from '../core/transport/blobs.ts';
import { decodeWeights, type FlatWeights } from '../core/weights.ts';
import { admittedExamples, screenCohort, updateProblem } from './admission.ts';
import type { EnvoyRegistry } from './registry.ts';
import type { ClientUpdate } from './strategies/index.ts';

export interface RoundContext {
  bus: Bus;
  config: ExperimentConfig;
  runId: string;
  round: number;
  /** The global model, offered to every participant. */
  globalWeights: OfferedBlob;
  /** The same model as a vector: updates must fit it; its size fixes a secure round's vector length. */
  global: FlatWeights;
  participants: string[];
  registry: EnvoyRegistry;
  log: Logger;
  /** Set on audited rounds: the envoys record which images they trained on (core/audit.ts). */
  audit?: TrainTask['audit'];
}

/** An envoy that left the round, and why; `rule` when its privacy policy refused the task (envoy.yaml key). */
export interface Dropout { envoy: string; reason: string; rule?: string }
export interface RoundCollection {
  updates: ClientUpdate[];
  results: TrainResult[];
  dropped: Dropout[];
  /** Envoys whose updates are in `updates` (a secure round hands over one pre-summed update); default updates.length. */
  contributors?: number;
  /** Set when the round cannot produce an aggregate; says why. */
  failure?: string;
}

export async function collectRound(ctx: RoundContext): Promise<RoundCollection> {
  const { bus, config, runId, round, log } = ctx;
  const federation = bus.federation;
  const pending = new Map<string, string>(); // envoy -> task id
  const collection: RoundCollection = { updates: [], results: [], dropped: [] };
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => { finish = resolve; });
  const bar = progress(`round ${round + 1} updates`, ctx.participants.length, log);
  const settled = () => {
    bar.update(collection.updates.length + collection.dropped.length, `${collection.dropped.length} dropped`);
    if (pending.size === 0) finish();
  };
  const drop = (envoy: string, reason: string, rule?: string) => {
    if (!pending.delete(envoy)) return;
    collection.dropped.push({ envoy, reason, ...(rule ? { rule } : {}) });
    log.warn(`round ${round + 1}: continuing without ${envoy}: ${reason}`);
    settled();
  };

  const receiving = new Set<string>();
  const sub = bus.serve(kinds.result, subjects.results(federation, config.name, runId, '*'), async (result, sender) => {
    if (result.envoy !== sender.name) {
      bus.trust.rejections.record(sender.name, 'speaks for another envoy', `a result of ${result.envoy}`);
      return { accepted: false, reason: `${sender.name} cannot send ${result.envoy}'s result` };
    }
    if (result.experiment !== config.name || result.run_id !== runId || result.round !== round || pending.get(result.envoy) !== result.task_id) {
      return { accepted: false, reason: `result for round ${result.round + 1} of run ${result.run_id} is not expected now` };
    }
    if (!result.ok || !result.update) {
      drop(result.envoy, `its training failed: ${result.error ?? 'no update'}`);
      return { accepted: true };
    }
    // Results are handled concurrently: one envoy's result is fetched once, even if it is sent again meanwhile.
    if (receiving.has(result.envoy)) return { accepted: false, reason: `${result.envoy}'s result is being received already` };
    receiving.add(result.envoy);
    try {
      const delta = decodeWeights(await fetchBlob(bus, result.update, { maxBytes: 64 + 8 * ctx.global.values.length + 64 * ctx.global.manifest.length + 1024 }));
      if (pending.get(result.envoy) !== result.task_id) return { accepted: false, reason: `${result.envoy} left round ${round + 1} while its update was fetched` };
      const problem = updateProblem(delta, ctx.global, config.aggregation.max_update_norm);
      if (problem) {
        drop(result.envoy, `its update was refused: ${problem}`);
        return { accepted: false, reason: problem };
      }
      const admitted = admittedExamples(result.envoy, result.examples, ctx.registry, bus.trust);
      if (admitted.note) log.warn(`round ${round + 1}: ${admitted.note}`);
      collection.updates.push({ envoy: result.envoy, examples: admitted.examples, delta });
      collection.results.push({ ...result, examples: admitted.examples });
      pending.delete(result.envoy);
      settled();
      return { accepted: true };
    } catch (error) {
      drop(result.envoy, `its update could not be received: ${(error as Error).message}`);
      return { accepted: false, reason: (error as Error).message };
    } finally {
      receiving.delete(result.envoy);
    }
  }, {
    senderInSubject: true,
    // A result this round expects but cannot read (malformed, non-finite metrics) ends that envoy's round at once.
    onRefused: (sender, reason) => { if (pending.has(sender)) drop(sender, `its result was refused: ${reason}`); },
  });
  const stopWatching = ctx.registry.onGone((envoy) => drop(envoy, 'it went silent (no heartbeat) or left'));
  const timer = setTimeout(() => [...pending.keys()].forEach((e) => drop(e, `no result within ${config.round_timeout_seconds} s`)),
    config.round_timeout_seconds * 1000);

  try {
    await bus.flush(); // the results subscription must be live before any envoy can answer
    // Every participant is pending before the first task goes out, so an early dropout cannot end the round.
    ctx.participants.forEach((envoy) => pending.set(envoy, randomUUID()));
    await Promise.all(ctx.participants.map(async (envoy) => {
      const taskId = pending.get(envoy)!;
      const task = {
        experiment: config.name, run_id: runId, round, task_id: taskId, model: config.model, training: config.training,
        weights: ctx.globalWeights.refFor(envoy), audit: ctx.audit, max_update_norm: config.aggregation.max_update_norm,
      };
      try {
        for (;;) {
          const ack = await bus.request(kinds.task, subjects.envoyTask(federation, envoy), envoy, task, 10_000,
            `sending the round ${round + 1} task to ${envoy}`);
          if (ack.accepted) break;
          // A busy envoy is asked again while it is alive and the round waits for it; any other refusal is final.
          if (!ack.retry_after_ms || !pending.has(envoy)) { drop(envoy, `it declined the task: ${ack.reason}`, ack.rule); break; }
          await new Promise((r) => setTimeout(r, ack.retry_after_ms));
          if (!pending.has(envoy)) break;
        }
      } catch (error) {
        drop(envoy, (error as Error).message);
      }
    }));
    if (pending.size > 0) await finished;
    return screened(collection, config, log, round);
  } finally {
    bar.stop();
    clearTimeout(timer);
    stopWatching();
    sub.unsubscribe();
  }
}

/** Updates far outside the rest of the cohort leave the round (admission.ts: `min_cosine`, `max_norm_ratio`). */
function screened(collection: RoundCollection, config: ExperimentConfig, log: Logger, round: number): RoundCollection {
  const { kept, refused } = screenCohort(collection.updates, { minCosine: config.aggregation.min_cosine, maxNormRatio: config.aggregation.max_norm_ratio });
  for (const r of refused) log.warn(`round ${round + 1}: continuing without ${r.envoy}: ${r.reason}`);
  const out = new Set(refused.map((r) => r.envoy));
  return {
    ...collection, updates: kept,
    results: collection.results.filter((r) => !out.has(r.envoy)),
    dropped: [...collection.dropped, ...refused],
  };
}
