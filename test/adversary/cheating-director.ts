/**
 * A director that cheats, for tests: it holds the real director's kit (so every message it sends is
 * validly signed) and runs the first two stages of a secure round by hand, the way the attacks of the
 * literature need: its own model per envoy (model inconsistency, per-client crafted models), crafted
 * weights, a jump in the trajectory, sybil members, an advertisement forged for a hospital it left out,
 * weights that make one hospital the whole sum.
 * It relays keys whatever their digests, as a server patched to ignore them would. What each envoy did
 * comes back per envoy: the stages it got through, or the rule it refused by.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import type { ExperimentConfig } from '../../ts/core/config/experiment.ts';
import { kinds, type SignedAdvertisement, type TrainTask } from '../../ts/core/messages.ts';
import { loadNative } from '../../ts/core/secagg/native.ts';
import { planSecureRound, taskParams } from '../../ts/core/secagg/params.ts';
import { subjects } from '../../ts/core/subjects.ts';
import { advertisementStatement, boundExperimentId, taskDigest } from '../../ts/core/task-digest.ts';
import type { Bus } from '../../ts/core/transport/bus.ts';
import { chunkBytesFor, offerBlob, type OfferedBlob } from '../../ts/core/transport/blobs.ts';
import { encodeWeights, type FlatWeights } from '../../ts/core/weights.ts';
import { SecureParticipant } from '../../ts/envoy/release/participant.ts';

export interface CheatPlan {
  experiment: ExperimentConfig;
  round: number;
  /** Envoys sent a task. */
  envoys: string[];
  /** The global model each envoy is sent. */
  weightsFor(envoy: string): FlatWeights;
  /** Cohort members that are no provisioned hospital (the director would play them). */
  sybils?: string[];
  /** Provisioned hospitals left out of the round whose advertisement the director forges (signed with its own key). */
  forged?: string[];
  /** The examples each member's weight is computed from (default 100 each). */
  examplesOf?(envoy: string): number;
  /** Tamper with a task just before it goes out (an imprint layer, say). */
  tamper?(task: TrainTask): unknown;
}

export interface EnvoyOutcome {
  /** Stages the envoy uploaded a message of (never masked_input when the checks hold). */
  stages: string[];
  /** The rule of the envoy's refusal (at the task, or in an upload), and what it said. */
  rule?: string;
  reason?: string;
}

export async function cheatingRound(bus: Bus, plan: CheatPlan): Promise<Map<string, EnvoyOutcome>> {
  const { experiment, round } = plan;
  const runId = randomUUID().replaceAll('-', '').slice(0, 8);
  const vectorLen = plan.weightsFor(plan.envoys[0]).values.length;
  const cohort = [...plan.envoys, ...(plan.sybils ?? []), ...(plan.forged ?? [])];
  const secure = planSecureRound({
    experimentId: `${experiment.name}/${runId}`, round, secagg: experiment.secagg,
    cohort: cohort.map((envoy) => ({ envoy, examples: plan.examplesOf?.(envoy) ?? 100 })), vectorLen, graphSeed: randomBytes(32),
  });
  const outcomes = new Map(plan.envoys.map((e) => [e, { stages: [] } as EnvoyOutcome]));
  const adverts = new Map<string, SignedAdvertisement>();
  const taskIds = new Map(plan.envoys.map((e) => [e, randomUUID()]));
  const offers: OfferedBlob[] = [];
  const header = (envoy: string) => ({ experiment: experiment.name, run_id: runId, round, task_id: taskIds.get(envoy)! });
  const taskFor = (envoy: string, weights: OfferedBlob): TrainTask => ({
    ...header(envoy), model: experiment.model, training: experiment.training, weights: weights.refFor(envoy),
    max_update_norm: experiment.aggregation.max_update_norm,
    secagg: { ...taskParams(secure, envoy), stage_timeout_ms: 20_000, round_timeout_ms: 60_000 },
  });

  const sub = bus.serve(kinds.secaggUpload, subjects.secaggUploads(bus.federation, experiment.name, runId, '*'), (upload) => {
    const outcome = outcomes.get(upload.envoy);
    if (!outcome) return { accepted: false, reason: 'not in this round' };
    if (upload.error) Object.assign(outcome, { rule: upload.rule ?? 'none', reason: upload.error });
    else outcome.stages.push(upload.stage);
    if (upload.stage === 'advertise' && upload.message && upload.digest && upload.signature) {
      adverts.set(upload.envoy, { envoy: upload.envoy, client_id: secure.ids.get(upload.envoy)!, advert: upload.message, digest: upload.digest, signature: upload.signature });
    }
    return { accepted: true };
  }, { senderInSubject: true });
  try {
    await bus.flush();
    const accepted: string[] = [];
    await Promise.all(plan.envoys.map(async (envoy) => {
      const offered = offerBlob(bus, encodeWeights(plan.weightsFor(envoy)), [envoy], chunkBytesFor(bus));
      offers.push(offered);
      const task = taskFor(envoy, offered);
      plan.tamper?.(task);
      try {
        const ack = await bus.request(kinds.task, subjects.envoyTask(bus.federation, envoy), envoy, task, 10_000);
        if (ack.accepted) accepted.push(envoy);
        else Object.assign(outcomes.get(envoy)!, { rule: ack.rule ?? 'none', reason: ack.reason });
      } catch (error) {
        Object.assign(outcomes.get(envoy)!, { rule: 'malformed', reason: (error as Error).message });
      }
    }));
    forgeAdvertisements(bus, plan, secure, taskFor, offers, adverts);
    await until(() => accepted.every((e) => adverts.has(e) || outcomes.get(e)!.rule), 30_000);
    // The keys stage, relayed by hand: every advertisement to everyone, each under the recipient's own round context.
    const all = [...adverts.values()];
    await Promise.all(accepted.filter((e) => adverts.has(e)).map(async (envoy) => {
      const own = unpack(adverts.get(envoy)!.advert) as { ctx: unknown };
      const neighbours = all.filter((a) => a.envoy !== envoy).map((a) => {
        const keys = unpack(a.advert) as { client: number; encPk: Uint8Array; maskPk: Uint8Array };
        return { client: keys.client, encPk: keys.encPk, maskPk: keys.maskPk };
      });
      const message = pack({ ctx: own.ctx, recipient: secure.ids.get(envoy)!, neighbours });
      await bus.request(kinds.secaggDelivery, subjects.envoySecAgg(bus.federation, envoy), envoy,
        { ...header(envoy), stage: 'keys', message: message as Uint8Array<ArrayBuffer>, advertisements: all as never }, 10_000);
    }));
    await until(() => accepted.every((e) => outcomes.get(e)!.stages.includes('share_keys') || outcomes.get(e)!.rule), 30_000);
    for (const envoy of accepted) {
      await bus.request(kinds.secaggDelivery, subjects.envoySecAgg(bus.federation, envoy), envoy,
        { ...header(envoy), stage: 'abort', reason: 'the cheat is over' }, 10_000).catch(() => undefined);
    }
    return outcomes;
  } finally {
    sub.unsubscribe();
    offers.forEach((o) => o.close());
  }
}

/** Advertisements for hospitals the director left out, made with its own keys and signed with its own identity. */
function forgeAdvertisements(bus: Bus, plan: CheatPlan, secure: ReturnType<typeof planSecureRound>,
  taskFor: (envoy: string, weights: OfferedBlob) => TrainTask, offers: OfferedBlob[], adverts: Map<string, SignedAdvertisement>): void {
  if (!plan.forged?.length) return;
  const first = plan.envoys[0];
  const plaintext = createHash('sha256').update(encodeWeights(plan.weightsFor(first))).digest('hex');
  const digest = taskDigest(taskFor(first, offers[0]), bus.federation, plaintext);
  for (const name of plan.forged) {
    const params = taskParams(secure, name);
    const participant = new SecureParticipant(loadNative(), { ...params, experiment_id: boundExperimentId(params.experiment_id, digest) }, plan.round);
    const advert = participant.advertise();
    const signature = bus.trust.attest(advertisementStatement(name, params.client_id, digest, advert));
    adverts.set(name, { envoy: name, client_id: params.client_id, advert: advert as Uint8Array<ArrayBuffer>, digest: digest as Uint8Array<ArrayBuffer>, signature: signature as Uint8Array<ArrayBuffer> });
  }
}

async function until(done: () => unknown, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}
