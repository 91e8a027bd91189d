/**
 * What every workflow that hears envoys' results checks first: the result comes from the envoy it names (an
 * envoy speaks for itself only) and is one the cohort still expects. The workflow handles the rest.
 */
import type { Subscription } from 'nats';
import type { z } from 'zod';
import { kinds, type ResultAckSchema, type TrainResult } from '../../core/messages.ts';
import { subjects } from '../../core/subjects.ts';
import type { Cohort } from './cohort.ts';
import type { RoundContext } from './context.ts';

export type ResultAck = z.input<typeof ResultAckSchema>;

/** `what` names the result in messages: 'result', 'evaluation'. */
export function serveResults(ctx: RoundContext, cohort: Cohort, what: string, handle: (result: TrainResult) => ResultAck | Promise<ResultAck>): Subscription {
  const { bus, config, runId } = ctx;
  const article = /^[aeiou]/.test(what) ? 'an' : 'a';
  return bus.serve(kinds.result, subjects.results(bus.federation, config.name, runId, '*'), (result, sender) => {
    if (result.envoy !== sender.name) {
      bus.trust.rejections.record(sender.name, 'speaks for another envoy', `${article} ${what} of ${result.envoy}`);
      return { accepted: false, reason: `${sender.name} cannot send ${result.envoy}'s ${what}` };
    }
    const unexpected = cohort.refusal(result.envoy, result);
    if (unexpected) return { accepted: false, reason: unexpected };
    return handle(result);
  }, {
    senderInSubject: true,
    // A result this round expects but cannot read (malformed, non-finite metrics) ends that envoy's round at once.
    onRefused: (sender, reason) => cohort.drop(sender, `its ${what} was refused: ${reason}`),
  });
}
