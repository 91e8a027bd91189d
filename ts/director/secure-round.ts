/**
 * One round's collection step under secure aggregation (SecAgg+): the same outcome as collectRound, but the
 * director only ever holds masked vectors and learns the example-weighted sum of the updates.
 *
 * Stages, each closed when every envoy still in the round has answered, the stage times out, or the missing
 * ones go silent: tasks out -> envoys advertise keys -> (keys relayed) share keys -> (shares relayed) envoys
 * train and send masked inputs -> (unmask requests) envoys reveal shares -> the director removes the masks.
 * An envoy lost after sharing keys is unmasked from its neighbours' shares; the round fails cleanly when
 * fewer than the threshold remain. Metrics travel in the clear beside the masked input: they are not updates.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Subscription } from 'nats';
import { kinds, type SecAggDelivery, type SecAggStage, type SecAggUpload, type TrainResult } from '../core/messages.ts';
import type { Peer } from '../core/trust/index.ts';
import { SecureAggregator } from '../core/secagg/aggregator.ts';
import { SecAggProtocolError } from '../core/secagg/errors.ts';
import { loadNative } from '../core/secagg/native.ts';
import { planSecureRound, taskParams, type SecureRoundPlan } from '../core/secagg/params.ts';
import { subjects } from '../core/subjects.ts';
import { fetchBlob } from '../core/transport/blobs.ts';
import { admittedExamples, aggregateProblem, cappedExamples } from './admission.ts';
import type { RoundCollection, RoundContext } from './round.ts';

export type SecureRoundContext = RoundContext;

/** Raised to end the round as failed (not the experiment): the message says why. */
class RoundFailure extends Error {}

export async function collectSecureRound(ctx: SecureRoundContext): Promise<RoundCollection> {
  const native = loadNative(); // a missing addon fails the experiment with the build instructions
  const collection: RoundCollection = { updates: [], results: [], dropped: [] };
  let plan: SecureRoundPlan;
  try {
    // Weights come from what each envoy registered, capped by its provisioning and by max_weight_fraction.
    const registered = ctx.participants.map((envoy) => examplesOf(ctx, envoy));
    const examples = cappedExamples(registered, ctx.config.aggregation.max_weight_fraction);
    plan = planSecureRound({
      experimentId: `${ctx.config.name}/${ctx.runId}`, round: ctx.round, secagg: ctx.config.secagg,
      cohort: ctx.participants.map((envoy, i) => ({ envoy, examples: examples[i] })),
      vectorLen: ctx.global.values.length, graphSeed: randomBytes(32),
    });
  } catch (error) {
    return { ...collection, failure: (error as Error).message };
  }
  plan.notes.forEach((note) => ctx.log.info(`round ${ctx.round + 1}: secure aggregation: ${note}`));
  const session = new SecureSession(ctx, plan, new SecureAggregator(native, plan));
  try {
    const aggregate = await session.run();
    const problem = aggregateProblem(aggregate.delta, ctx.config.aggregation.max_update_norm, aggregate.errorBound);
    if (problem) throw new RoundFailure(`${problem} (secure sum of ${aggregate.included.join(', ')})`);
    collection.updates.push({
      envoy: `secure sum of ${aggregate.included.length}`, examples: aggregate.examples, delta: { manifest: ctx.global.manifest, values: aggregate.delta },
      members: Object.fromEntries(aggregate.included.map((e) => [e, plan.examples.get(e)!])),
    });
    collection.contributors = aggregate.included.length;
    collection.results = aggregate.included.map((e) => session.results.get(e)).filter((r): r is TrainResult => !!r);
    ctx.log.info(`round ${ctx.round + 1}: secure sum of ${aggregate.included.join(', ')}` +
      (aggregate.recovered.length ? `; masks of ${aggregate.recovered.join(', ')} removed with their neighbours' shares` : '') +
      ` (quantization error <= ${aggregate.errorBound.toExponential(2)} per weight)`);
  } catch (error) {
    if (!(error instanceof RoundFailure || error instanceof SecAggProtocolError)) throw error;
    collection.failure = error.message;
  } finally {
    session.close();
  }
  collection.dropped = session.dropped;
  return collection;
}

function examplesOf(ctx: RoundContext, envoy: string): number {
  const record = ctx.registry.all().find(([name]) => name === envoy)?.[1];
  if (!record) throw new RoundFailure(`envoy ${envoy} is not registered`);
  return admittedExamples(envoy, record.descriptor.counts.train, ctx.registry, ctx.bus.trust).examples;
}

type Dropout = RoundCollection['dropped'][number];

class SecureSession {
  readonly results = new Map<string, TrainResult>();
  readonly dropped: Dropout[] = [];
  private readonly active = new Set<string>();
  private readonly taskIds = new Map<string, string>();
  private stage: SecAggStage = 'advertise';
  private answered = new Set<string>();
  private readonly receiving = new Set<string>();
  private stageDone: () => void = () => undefined;
  private readonly sub: Subscription;
  private readonly stopWatching: () => void;

  constructor(private readonly ctx: SecureRoundContext, private readonly plan: SecureRoundPlan, private readonly aggregator: SecureAggregator) {
    this.sub = ctx.bus.serve(kinds.secaggUpload, subjects.secaggUploads(ctx.bus.federation, ctx.config.name, ctx.runId, '*'),
      (upload, sender) => this.receive(upload, sender), { senderInSubject: true });
    this.stopWatching = ctx.registry.onGone((envoy) => this.drop(envoy, 'it went silent (no heartbeat) or left'));
  }

  async run() {
    const { ctx } = this;
    const stageMs = ctx.config.secagg.stage_timeout_seconds * 1000;
    await ctx.bus.flush(); // uploads may come as soon as the first task is accepted
    ctx.participants.forEach((envoy) => { this.active.add(envoy); this.taskIds.set(envoy, randomUUID()); });
    await this.stageClosed('advertise', stageMs, () => Promise.all(ctx.participants.map((e) => this.sendTask(e))));
    await this.stageClosed('share_keys', stageMs, () => this.deliver('keys', this.aggregator.close('advertise')));
    // Masked inputs come after local training: this stage waits as long as a plain round would.
    await this.stageClosed('masked_input', ctx.config.round_timeout_seconds * 1000,
      () => this.deliver('shares', this.aggregator.close('share_keys')));
    const requests = this.aggregator.close('masked_input');
    this.requireSurvivors(requests.size, 'masked input');
    await this.stageClosed('unmask', stageMs, () => this.deliver('unmask', requests));
    return this.aggregator.finish();
  }

  close(): void {
    this.stopWatching();
    this.sub.unsubscribe();
    this.stageDone();
    // Envoys still waiting for a next stage stop now instead of at their own timeout.
    for (const envoy of this.ctx.participants) {
      void this.send(envoy, { stage: 'abort', reason: 'the round is over' }).catch(() => undefined);
    }
  }

  /** Opens `stage`, runs `start` (which sends what the envoys answer in this stage), waits for the answers. */
  private async stageClosed(stage: SecAggStage, timeoutMs: number, start: () => Promise<unknown>): Promise<void> {
    this.stage = stage;
    this.answered = new Set();
    const done = new Promise<void>((resolve) => { this.stageDone = resolve; });
    const timer = setTimeout(() => [...this.active].filter((e) => !this.answered.has(e))
      .forEach((e) => this.drop(e, `no ${stage.replace('_', ' ')} within ${timeoutMs / 1000} s`)), timeoutMs);
    try {
      await start();
      this.checkStage();
      await done;
    } finally {
      clearTimeout(timer);
    }
    this.requireSurvivors(this.active.size, stage.replace('_', ' '));
  }

  private requireSurvivors(count: number, stage: string): void {
    if (count >= this.plan.minSurvivors) return;
    const why = this.dropped.map((d) => `${d.envoy}: ${d.reason}`).join('; ');
    throw new RoundFailure(`secure aggregation needs at least ${this.plan.minSurvivors} of the ${this.plan.ids.size} envoys (secagg.threshold), ` +
      `${count} left at the ${stage} stage${why ? ` (${why})` : ''}`);
  }

  private checkStage(): void {
    if ([...this.active].every((e) => this.answered.has(e))) this.stageDone();
  }

  private drop(envoy: string, reason: string, rule?: string): void {
    if (!this.active.delete(envoy)) return;
    this.dropped.push({ envoy, reason, ...(rule ? { rule } : {}) });
    this.ctx.log.warn(`round ${this.ctx.round + 1}: continuing without ${envoy}: ${reason}`);
    this.checkStage();
  }

  private async receive(upload: SecAggUpload, sender: Peer) {
    const { envoy, stage } = upload;
    if (envoy !== sender.name) return { accepted: false, reason: `${sender.name} cannot speak for ${envoy}` };
    if (upload.experiment !== this.ctx.config.name || upload.run_id !== this.ctx.runId || upload.round !== this.ctx.round || this.taskIds.get(envoy) !== upload.task_id) {
      return { accepted: false, reason: `message for round ${upload.round + 1} of run ${upload.run_id} is not expected now` };
    }
    if (!this.active.has(envoy)) return { accepted: false, reason: `${envoy} is no longer part of round ${this.ctx.round + 1}` };
    if (stage !== this.stage || this.answered.has(envoy) || this.receiving.has(envoy)) return { accepted: false, reason: `unexpected ${stage} message (stage is ${this.stage})` };
    if (upload.error) {
      this.drop(envoy, `it gave up: ${upload.error}`);
      return { accepted: true };
    }
    // Uploads are handled concurrently: one envoy's message of a stage is taken once.
    this.receiving.add(envoy);
    try {
      const message = await this.payloadOf(upload);
      if (stage !== this.stage || !this.active.has(envoy)) return { accepted: false, reason: `the ${stage} stage closed meanwhile` };
      this.aggregator.receive(stage, envoy, message);
    } catch (error) {
      this.drop(envoy, (error as Error).message);
      return { accepted: false, reason: (error as Error).message };
    } finally {
      this.receiving.delete(envoy);
    }
    if (upload.result) this.results.set(envoy, upload.result);
    this.answered.add(envoy);
    this.checkStage();
    return { accepted: true };
  }

  private async payloadOf(upload: SecAggUpload): Promise<Uint8Array> {
    if (upload.result?.update) throw new Error('it sent its update in the clear, which secure aggregation never accepts');
    if (upload.stage !== 'masked_input') {
      if (!upload.message) throw new Error(`its ${upload.stage} message is empty`);
      return upload.message;
    }
    if (!upload.blob) throw new Error('its masked input carries no blob reference');
    return fetchBlob(this.ctx.bus, upload.blob);
  }

  private async sendTask(envoy: string): Promise<void> {
    const { ctx, plan } = this;
    const task = {
      experiment: ctx.config.name, run_id: ctx.runId, round: ctx.round, task_id: this.taskIds.get(envoy)!, model: ctx.config.model,
      training: ctx.config.training, audit: ctx.audit, weights: ctx.globalWeights.refFor(envoy), max_update_norm: ctx.config.aggregation.max_update_norm,
      secagg: {
        ...taskParams(plan, envoy),
        stage_timeout_ms: ctx.config.secagg.stage_timeout_seconds * 1000, round_timeout_ms: ctx.config.round_timeout_seconds * 1000,
      },
    };
    try {
      for (;;) {
        const ack = await ctx.bus.request(kinds.task, subjects.envoyTask(ctx.bus.federation, envoy), envoy, task, 10_000,
          `sending the round ${ctx.round + 1} task to ${envoy}`);
        if (ack.accepted) return;
        // A busy envoy is asked again while it is alive; any other refusal is final.
        if (!ack.retry_after_ms || !this.active.has(envoy)) return this.drop(envoy, `it declined the task: ${ack.reason}`, ack.rule);
        await new Promise((r) => setTimeout(r, ack.retry_after_ms));
        if (!this.active.has(envoy)) return;
      }
    } catch (error) {
      this.drop(envoy, (error as Error).message);
    }
  }

  /** Relays the addon's per-envoy messages; an envoy still active but left out by the protocol is dropped. */
  private async deliver(stage: 'keys' | 'shares' | 'unmask', messages: Map<string, Uint8Array>): Promise<void> {
    for (const envoy of [...this.active]) {
      if (!messages.has(envoy)) this.drop(envoy, `the protocol left it out of the ${stage} stage`);
    }
    await Promise.all([...messages].filter(([envoy]) => this.active.has(envoy)).map(async ([envoy, message]) => {
      try {
        const ack = await this.send(envoy, { stage, message });
        if (!ack.accepted) this.drop(envoy, `it refused the ${stage} message: ${ack.reason}`);
      } catch (error) {
        this.drop(envoy, (error as Error).message);
      }
    }));
  }

  private send(envoy: string, body: { stage: SecAggDelivery['stage']; message?: Uint8Array; reason?: string }) {
    const { ctx } = this;
    // The addon's Buffers are views on Node's pool: zod's Uint8Array<ArrayBuffer> is the same thing at runtime.
    const { message, ...rest } = body;
    return ctx.bus.request(kinds.secaggDelivery, subjects.envoySecAgg(ctx.bus.federation, envoy), envoy,
      { experiment: ctx.config.name, run_id: ctx.runId, round: ctx.round, task_id: this.taskIds.get(envoy)!, ...rest,
        ...(message ? { message: message as Uint8Array<ArrayBuffer> } : {}) },
      10_000, `sending the ${body.stage} message to ${envoy}`);
  }
}
