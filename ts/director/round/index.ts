/**
 * One round's collection step, the same for every workflow: plan the workflow (plain or secure aggregation, or
 * the evaluation after the last round),
 * listen for the envoys' answers, send the tasks, run the workflow's stages with the cohort, hand over what
 * arrived. A round that cannot produce an aggregate comes back with `failure` set; the experiment goes on.
 */
import type { TrainTask } from '../../core/messages.ts';
import { learningRateAt } from '../../core/config/experiment.ts';
import { SecAggProtocolError } from '../../core/secagg/errors.ts';
import { Cohort } from './cohort.ts';
import { RoundFailure, type RoundCollection, type RoundContext } from './context.ts';
import { PlainWorkflow } from './plain.ts';
import { SecureWorkflow } from './secure.ts';
import { EvaluationWorkflow } from './evaluation.ts';
import type { RoundWorkflow } from './workflow.ts';

export type { Dropout, RoundCollection, RoundContext } from './context.ts';

export async function collectRound(ctx: RoundContext): Promise<RoundCollection> {
  let workflow: RoundWorkflow;
  try {
    workflow = ctx.evaluate ? new EvaluationWorkflow(ctx) : ctx.config.secagg.enabled ? new SecureWorkflow(ctx) : new PlainWorkflow(ctx);
  } catch (error) {
    if (error instanceof RoundFailure) return { updates: [], results: [], dropped: [], failure: error.message };
    throw error;
  }
  const cohort = new Cohort(ctx);
  try {
    const taskFor = (envoy: string): TrainTask => ({ ...baseTask(ctx, cohort, envoy), ...workflow.taskExtras(envoy) });
    if (ctx.participants.length) workflow.bind?.(taskFor);
    workflow.listen(cohort);
    await ctx.bus.flush(); // answers may come as soon as the first task is accepted
    await cohort.run(workflow.stages(cohort), taskFor);
    return await workflow.collection(cohort);
  } catch (error) {
    if (!(error instanceof RoundFailure || error instanceof SecAggProtocolError)) throw error;
    return { updates: [], results: [], dropped: cohort.dropped, failure: error.message };
  } finally {
    workflow.close(cohort);
    cohort.close();
  }
}

/** What every envoy is asked to do this round, whatever the workflow. */
function baseTask(ctx: RoundContext, cohort: Cohort, envoy: string): TrainTask {
  const { config } = ctx;
  return {
    ...cohort.header(envoy), model: config.model, training: { ...config.training, learning_rate: learningRateAt(config, ctx.round) }, weights: ctx.globalWeights.refFor(envoy),
    audit: ctx.audit, max_update_norm: config.aggregation.max_update_norm,
  };
}
