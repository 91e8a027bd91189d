/**
 * Secure aggregation (SecAgg+) as the round's workflow: the same outcome as plain aggregation, but the
 * director only ever holds masked vectors and learns the example-weighted sum of the updates.
 *
 * Stages: tasks out -> envoys advertise keys -> (keys relayed) share keys -> (shares relayed) envoys train
 * and send masked inputs -> (unmask requests) envoys reveal shares -> the director removes the masks.
 * An envoy lost after sharing keys is unmasked from its neighbours' shares; the round fails cleanly when
 * fewer than the threshold remain. Metrics travel in the clear beside the masked input: they are not updates.
 */
import { randomBytes } from 'node:crypto';
import type { Subscription } from 'nats';
import { kinds, type SecAggDelivery, type SecAggStage, type SecAggUpload, type SignedAdvertisement, type TrainResult, type TrainTask } from '../../core/messages.ts';
import type { NativeAddon } from '../../core/secagg/native.ts';
import { loadNative } from '../../core/secagg/native.ts';
import { planSecureRound, taskParams, type SecureRoundPlan } from '../../core/secagg/params.ts';
import { subjects } from '../../core/subjects.ts';
import { advertisementStatement, boundExperimentId, taskDigest } from '../../core/task-digest.ts';
import type { Peer } from '../../core/trust/index.ts';
import { fetchBlob } from '../../core/transport/blobs.ts';
import { admittedExamples, aggregateProblem, cappedExamples } from '../admission.ts';
import { SecureAggregator } from './aggregator.ts';
import type { Cohort, Stage } from './cohort.ts';
import { RoundFailure, type RoundCollection, type RoundContext } from './context.ts';
import type { RoundWorkflow } from './workflow.ts';

export class SecureWorkflow implements RoundWorkflow {
  private readonly plan: SecureRoundPlan;
  private readonly native: NativeAddon;
  private aggregator!: SecureAggregator;
  /** The digest of the task every envoy was sent: the envoys bind their keys to it, so the server does too. */
  private digest: Buffer = Buffer.alloc(0);
  /** Each envoy's signed advertisement, relayed with the keys so every envoy checks the others itself. */
  private readonly advertisements = new Map<string, SignedAdvertisement>();
  private readonly results = new Map<string, TrainResult>();
  private readonly receiving = new Set<string>();
  private sub?: Subscription;

  /** Raises RoundFailure when the round cannot be planned (too few envoys for the threshold, say). */
  constructor(private readonly ctx: RoundContext) {
    this.native = loadNative(); // a missing addon fails the experiment with the build instructions
    try {
      // Weights come from what each envoy registered, capped by its provisioning and by max_weight_fraction.
      const registered = ctx.participants.map((envoy) => this.registeredExamples(envoy));
      const examples = cappedExamples(registered, ctx.config.aggregation.max_weight_fraction);
      this.plan = planSecureRound({
        experimentId: `${ctx.config.name}/${ctx.runId}`, round: ctx.round, secagg: ctx.config.secagg,
        cohort: ctx.participants.map((envoy, i) => ({ envoy, examples: examples[i] })),
        vectorLen: ctx.global.values.length, graphSeed: randomBytes(32),
      });
    } catch (error) {
      throw new RoundFailure((error as Error).message);
    }
    this.plan.notes.forEach((note) => ctx.log.info(`round ${ctx.round + 1}: secure aggregation: ${note}`));
  }

  bind(sample: TrainTask): void {
    this.digest = taskDigest(sample, this.ctx.bus.federation, this.ctx.globalSha256);
    this.aggregator = new SecureAggregator(this.native, { ...this.plan, experimentId: boundExperimentId(this.plan.experimentId, this.digest) });
  }

  taskExtras(envoy: string) {
    const { secagg, round_timeout_seconds: roundSeconds } = this.ctx.config;
    return { secagg: { ...taskParams(this.plan, envoy), stage_timeout_ms: secagg.stage_timeout_seconds * 1000, round_timeout_ms: roundSeconds * 1000 } };
  }

  listen(cohort: Cohort): void {
    const { bus, config, runId } = this.ctx;
    this.sub = bus.serve(kinds.secaggUpload, subjects.secaggUploads(bus.federation, config.name, runId, '*'),
      (upload, sender) => this.receive(cohort, upload, sender), { senderInSubject: true });
  }

  stages(cohort: Cohort): Stage[] {
    const stageMs = this.ctx.config.secagg.stage_timeout_seconds * 1000;
    let requests = new Map<string, Uint8Array>();
    return [
      { name: 'advertise', timeoutMs: stageMs },
      { name: 'share_keys', timeoutMs: stageMs, open: () => this.deliver(cohort, 'keys', this.closed(cohort, 'advertise'), [...this.advertisements.values()]) },
      // Masked inputs come after local training: this stage waits as long as a plain round would.
      {
        name: 'masked_input', timeoutMs: this.ctx.config.round_timeout_seconds * 1000, long: true,
        open: () => this.deliver(cohort, 'shares', this.closed(cohort, 'share_keys')),
      },
      {
        name: 'unmask', timeoutMs: stageMs,
        open: () => {
          requests = this.closed(cohort, 'masked_input');
          this.requireSurvivors(cohort, requests.size, 'masked input');
          return this.deliver(cohort, 'unmask', requests);
        },
      },
    ];
  }

  async collection(cohort: Cohort): Promise<RoundCollection> {
    this.requireSurvivors(cohort, cohort.size(), 'unmask');
    const { ctx, plan } = this;
    const aggregate = await this.aggregator.finish();
    const problem = aggregateProblem(aggregate.delta, ctx.config.aggregation.max_update_norm, aggregate.errorBound);
    if (problem) throw new RoundFailure(`${problem} (secure sum of ${aggregate.included.join(', ')})`);
    ctx.log.info(`round ${ctx.round + 1}: secure sum of ${aggregate.included.join(', ')}` +
      (aggregate.recovered.length ? `; masks of ${aggregate.recovered.join(', ')} removed with their neighbours' shares` : '') +
      ` (quantization error <= ${aggregate.errorBound.toExponential(2)} per weight)`);
    return {
      updates: [{
        envoy: `secure sum of ${aggregate.included.length}`, examples: aggregate.examples, delta: { manifest: ctx.global.manifest, values: aggregate.delta },
        members: Object.fromEntries(aggregate.included.map((e) => [e, plan.examples.get(e)!])),
      }],
      contributors: aggregate.included.length,
      results: aggregate.included.map((e) => this.results.get(e)).filter((r): r is TrainResult => !!r),
      dropped: cohort.dropped,
    };
  }

  close(cohort: Cohort): void {
    this.sub?.unsubscribe();
    // Envoys still waiting for a next stage stop now instead of at their own timeout.
    for (const envoy of this.ctx.participants) {
      void this.send(cohort, envoy, { stage: 'abort', reason: 'the round is over' }).catch(() => undefined);
    }
  }

  private registeredExamples(envoy: string): number {
    const record = this.ctx.registry.record(envoy);
    if (!record) throw new RoundFailure(`envoy ${envoy} is not registered`);
    return admittedExamples(envoy, record.descriptor.counts.train, this.ctx.registry, this.ctx.bus.trust).examples;
  }

  /** Closes a stage in the addon (its messages for the next one), once enough envoys are left to go on. */
  private closed(cohort: Cohort, stage: Exclude<SecAggStage, 'unmask'>): Map<string, Uint8Array> {
    this.requireSurvivors(cohort, cohort.size(), stage.replace('_', ' '));
    return this.aggregator.close(stage);
  }

  private requireSurvivors(cohort: Cohort, count: number, stage: string): void {
    if (count >= this.plan.minSurvivors) return;
    const why = cohort.dropped.map((d) => `${d.envoy}: ${d.reason}`).join('; ');
    throw new RoundFailure(`secure aggregation needs at least ${this.plan.minSurvivors} of the ${this.plan.ids.size} envoys (secagg.threshold), ` +
      `${count} left at the ${stage} stage${why ? ` (${why})` : ''}`);
  }

  private async receive(cohort: Cohort, upload: SecAggUpload, sender: Peer) {
    const { envoy, stage } = upload;
    if (envoy !== sender.name) return { accepted: false, reason: `${sender.name} cannot speak for ${envoy}` };
    const unexpected = cohort.refusal(envoy, upload);
    if (unexpected) return { accepted: false, reason: unexpected };
    if (stage !== cohort.stage || this.receiving.has(envoy)) return { accepted: false, reason: `unexpected ${stage} message (stage is ${cohort.stage})` };
    if (upload.error) {
      cohort.drop(envoy, `it gave up: ${upload.error}`, upload.rule);
      return { accepted: true };
    }
    // Uploads are handled concurrently: one envoy's message of a stage is taken once.
    this.receiving.add(envoy);
    try {
      const message = await this.payloadOf(upload);
      if (stage !== cohort.stage || !cohort.has(envoy)) return { accepted: false, reason: `the ${stage} stage closed meanwhile` };
      if (stage === 'advertise') this.keepAdvertisement(envoy, upload, message);
      this.aggregator.receive(stage, envoy, message);
    } catch (error) {
      cohort.drop(envoy, (error as Error).message);
      return { accepted: false, reason: (error as Error).message };
    } finally {
      this.receiving.delete(envoy);
    }
    if (upload.result) this.results.set(envoy, upload.result);
    cohort.answer(envoy);
    return { accepted: true };
  }

  /** An advertisement must carry this round's digest, signed by its envoy: anything else never reaches the others. */
  private keepAdvertisement(envoy: string, upload: SecAggUpload, advert: Uint8Array): void {
    const clientId = this.plan.ids.get(envoy)!;
    if (!upload.digest || !upload.signature) throw new Error('its advertisement carries no signed task digest');
    if (!this.digest.equals(Buffer.from(upload.digest))) {
      throw new Error(`it holds a different task than the one this round sent (digest ${Buffer.from(upload.digest).toString('hex').slice(0, 12)}…, ` +
        `sent ${this.digest.toString('hex').slice(0, 12)}…)`);
    }
    const { trust } = this.ctx.bus;
    if (trust.secure && !trust.verifyAttestation(envoy, 'envoy', advertisementStatement(envoy, clientId, upload.digest, advert), upload.signature)) {
      throw new Error('its advertisement is not signed by it');
    }
    this.advertisements.set(envoy, { envoy, client_id: clientId, advert: advert as Uint8Array<ArrayBuffer>, digest: upload.digest, signature: upload.signature });
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

  /** Relays the addon's per-envoy messages; an envoy still in the round but left out by the protocol is dropped. */
  private async deliver(cohort: Cohort, stage: 'keys' | 'shares' | 'unmask', messages: Map<string, Uint8Array>, advertisements?: SignedAdvertisement[]): Promise<void> {
    for (const envoy of cohort.members) {
      if (!messages.has(envoy)) cohort.drop(envoy, `the protocol left it out of the ${stage} stage`);
    }
    await Promise.all([...messages].filter(([envoy]) => cohort.has(envoy)).map(async ([envoy, message]) => {
      try {
        const ack = await this.send(cohort, envoy, { stage, message, advertisements });
        if (!ack.accepted) cohort.drop(envoy, `it refused the ${stage} message: ${ack.reason}`);
      } catch (error) {
        cohort.drop(envoy, (error as Error).message);
      }
    }));
  }

  private send(cohort: Cohort, envoy: string, body: { stage: SecAggDelivery['stage']; message?: Uint8Array; reason?: string; advertisements?: SignedAdvertisement[] }) {
    const { bus, round } = this.ctx;
    // The addon's Buffers are views on Node's pool: zod's Uint8Array<ArrayBuffer> is the same thing at runtime.
    const { message, advertisements, ...rest } = body;
    return bus.request(kinds.secaggDelivery, subjects.envoySecAgg(bus.federation, envoy), envoy,
      { ...cohort.header(envoy), ...rest, ...(message ? { message: message as Uint8Array<ArrayBuffer> } : {}), ...(advertisements ? { advertisements: advertisements as SecAggDelivery['advertisements'] } : {}) },
      // The stage's own bound, not a fixed 10 s: an envoy busy with local DP-SGD on a loaded machine answers late.
      this.ctx.config.secagg.stage_timeout_seconds * 1000, `sending the ${body.stage} message to ${envoy} (round ${round + 1})`);
  }
}
