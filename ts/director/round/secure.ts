/**
 * Secure aggregation (SecAgg+) as the round's workflow: the same outcome as plain aggregation, but the
 * director only ever holds masked vectors and learns example-weighted sums of the updates: one sum of the
 * whole cohort, or with `secagg.sub_cohort_size` one per sub-cohort (sub-cohorts.ts), each its own SecAgg+
 * instance (secure-sum.ts) that succeeds or fails alone.
 *
 * Stages: tasks out -> envoys advertise keys -> (keys relayed) share keys -> (shares relayed) envoys train
 * and send masked inputs -> (unmask requests) envoys reveal shares -> the director removes the masks.
 * An envoy lost after sharing keys is unmasked from its neighbours' shares; a sum fails cleanly when fewer
 * than its threshold remain, and the round fails when no sum is left. Metrics travel in the clear beside the
 * masked input: they are not updates.
 */
import { randomBytes } from 'node:crypto';
import type { Subscription } from 'nats';
import { kinds, type SecAggDelivery, type SecAggStage, type SecAggUpload, type SignedAdvertisement, type TrainResult, type TrainTask } from '../../core/messages.ts';
import type { NativeAddon } from '../../core/secagg/native.ts';
import { loadNative } from '../../core/secagg/native.ts';
import { taskParams } from '../../core/secagg/params.ts';
import { subjects } from '../../core/subjects.ts';
import type { Peer } from '../../core/trust/index.ts';
import { fetchBlob } from '../../core/transport/blobs.ts';
import { admittedExamples, aggregateProblem, cappedExamples, screenedCohort } from '../admission.ts';
import type { ClientUpdate } from '../strategies/index.ts';
import type { Cohort, Stage } from './cohort.ts';
import { RoundFailure, type RoundCollection, type RoundContext } from './context.ts';
import { SecureSum } from './secure-sum.ts';
import { dealSubCohorts, type SubCohortOutcome } from './sub-cohorts.ts';
import type { RoundWorkflow } from './workflow.ts';

export class SecureWorkflow implements RoundWorkflow {
  private readonly native: NativeAddon;
  private readonly sums: SecureSum[];
  private readonly sumOf = new Map<string, SecureSum>();
  private readonly results = new Map<string, TrainResult>();
  private readonly receiving = new Set<string>();
  private sub?: Subscription;

  /** Raises RoundFailure when the round cannot be planned (too few envoys for the threshold, say). */
  constructor(private readonly ctx: RoundContext) {
    this.native = loadNative(); // a missing addon fails the experiment with the build instructions
    const { config, participants } = ctx;
    // Weights come from what each envoy registered, capped by its provisioning and by max_weight_fraction.
    const capped = cappedExamples(participants.map((envoy) => this.registeredExamples(envoy)), config.aggregation.max_weight_fraction);
    const examples = new Map(participants.map((envoy, i) => [envoy, capped[i]]));
    const groups = config.secagg.sub_cohort_size > 0
      ? dealSubCohorts(participants, config.secagg.sub_cohort_size, (e) => ctx.suspicion?.(e) ?? 0) : [participants];
    try {
      this.sums = groups.map((members, k) => new SecureSum(this.native, {
        experimentId: `${config.name}/${ctx.runId}${groups.length > 1 ? `/sub${k + 1}` : ''}`, round: ctx.round, secagg: config.secagg,
        cohort: members.map((envoy) => ({ envoy, examples: examples.get(envoy)! })),
        vectorLen: ctx.global.values.length, graphSeed: randomBytes(32),
      }));
    } catch (error) {
      throw new RoundFailure((error as Error).message);
    }
    for (const sum of this.sums) for (const envoy of sum.members) this.sumOf.set(envoy, sum);
    if (this.sums.length > 1) ctx.log.info(`round ${ctx.round + 1}: secure aggregation in ${this.sums.length} sub-cohorts: ${this.sums.map((s) => s.members.join(', ')).join(' | ')}`);
    this.sums.flatMap((s) => s.plan.notes).forEach((note) => ctx.log.info(`round ${ctx.round + 1}: secure aggregation: ${note}`));
  }

  bind(taskFor: (envoy: string) => TrainTask): void {
    for (const sum of this.sums) sum.bind(taskFor(sum.members[0]), this.ctx.bus.federation, this.ctx.globalSha256);
  }

  taskExtras(envoy: string) {
    const { secagg, round_timeout_seconds: roundSeconds } = this.ctx.config;
    return { secagg: { ...taskParams(this.sumOf.get(envoy)!.plan, envoy), stage_timeout_ms: secagg.stage_timeout_seconds * 1000, round_timeout_ms: roundSeconds * 1000 } };
  }

  listen(cohort: Cohort): void {
    const { bus, config, runId } = this.ctx;
    this.sub = bus.serve(kinds.secaggUpload, subjects.secaggUploads(bus.federation, config.name, runId, '*'),
      (upload, sender) => this.receive(cohort, upload, sender), { senderInSubject: true });
  }

  stages(cohort: Cohort): Stage[] {
    const stageMs = this.ctx.config.secagg.stage_timeout_seconds * 1000;
    return [
      { name: 'advertise', timeoutMs: stageMs },
      {
        name: 'share_keys', timeoutMs: stageMs,
        open: () => this.eachSum(cohort, (sum) => this.deliver(cohort, sum, 'keys', this.closed(cohort, sum, 'advertise'), [...sum.advertisements.values()])),
      },
      // Masked inputs come after local training: this stage waits as long as a plain round would.
      {
        name: 'masked_input', timeoutMs: this.ctx.config.round_timeout_seconds * 1000, long: true,
        open: () => this.eachSum(cohort, (sum) => this.deliver(cohort, sum, 'shares', this.closed(cohort, sum, 'share_keys'))),
      },
      {
        name: 'unmask', timeoutMs: stageMs,
        open: () => this.eachSum(cohort, (sum) => {
          const requests = this.closed(cohort, sum, 'masked_input');
          // Only those that sent a masked input count: the others' masks come off with their neighbours' shares.
          const short = sum.failure ? undefined : sum.shortfall(requests.size, 'masked input', cohort);
          if (short) return this.fail(cohort, sum, short);
          return this.deliver(cohort, sum, 'unmask', requests);
        }),
      },
    ];
  }

  async collection(cohort: Cohort): Promise<RoundCollection> {
    const outcomes: SubCohortOutcome[] = [];
    const sums: { sum: SecureSum; update: ClientUpdate }[] = [];
    for (const sum of this.sums) {
      const short = sum.failure ? undefined : sum.shortfall(sum.survivors(cohort).length, 'unmask', cohort);
      if (short) this.fail(cohort, sum, short);
      const update = sum.failure ? undefined : await this.unmasked(cohort, sum);
      if (update) sums.push({ sum, update });
      else outcomes.push({ members: sum.members, refused: sum.failure });
    }
    if (!sums.length) throw new RoundFailure(this.sums.length === 1 ? this.sums[0].failure! : `every sub-cohort failed: ${this.sums.map((s) => s.failure).join('; ')}`);
    // Sub-cohort sums far outside the others' leave the round, as single updates do without secure aggregation.
    const { kept, refused } = screenedCohort(sums.map((s) => s.update), this.ctx);
    for (const { sum, update } of sums) {
      const refusal = refused.find((r) => r.envoy === update.envoy);
      outcomes.push({ members: sum.members, ...(refusal ? { refused: refusal.reason } : {}) });
    }
    const included = new Set(kept.flatMap((u) => Object.keys(u.members ?? {})));
    return {
      updates: kept,
      contributors: included.size,
      results: [...included].map((e) => this.results.get(e)).filter((r): r is TrainResult => !!r),
      dropped: cohort.dropped,
      ...(this.sums.length > 1 ? { subCohorts: outcomes } : {}),
    };
  }

  close(cohort: Cohort): void {
    this.sub?.unsubscribe();
    // Envoys still waiting for a next stage stop now instead of at their own timeout.
    for (const envoy of this.ctx.participants) {
      void this.send(cohort, envoy, { stage: 'abort', reason: 'the round is over' }).catch(() => undefined);
    }
  }

  /** One sum's FedAvg delta, or undefined when its unmasked sum is refused (the sum then says why). */
  private async unmasked(cohort: Cohort, sum: SecureSum): Promise<ClientUpdate | undefined> {
    const { ctx } = this;
    let aggregate;
    try {
      aggregate = await sum.aggregator.finish();
    } catch (error) {
      this.fail(cohort, sum, (error as Error).message, { keepMembers: true });
      return undefined;
    }
    const what = `secure sum of ${aggregate.included.join(', ')}`;
    const problem = aggregateProblem(aggregate.delta, ctx.config.aggregation.max_update_norm, aggregate.errorBound);
    if (problem) {
      this.fail(cohort, sum, `${problem} (${what})`, { keepMembers: true });
      return undefined;
    }
    ctx.log.info(`round ${ctx.round + 1}: ${what}` +
      (aggregate.recovered.length ? `; masks of ${aggregate.recovered.join(', ')} removed with their neighbours' shares` : '') +
      ` (quantization error <= ${aggregate.errorBound.toExponential(2)} per weight)`);
    return {
      envoy: `the secure sum of ${aggregate.included.length}${this.sums.length > 1 ? ` (${aggregate.included.join(', ')})` : ''}`,
      examples: aggregate.examples, delta: { manifest: ctx.global.manifest, values: aggregate.delta },
      members: Object.fromEntries(aggregate.included.map((e) => [e, sum.plan.examples.get(e)!])),
    };
  }

  /** Runs a stage's opening for every sum still going; the round fails once none is. */
  private async eachSum(cohort: Cohort, open: (sum: SecureSum) => Promise<void> | void): Promise<void> {
    await Promise.all(this.sums.filter((s) => !s.failure).map(open));
    const live = this.sums.filter((s) => !s.failure);
    if (live.length) return;
    throw new RoundFailure(this.sums.length === 1 ? this.sums[0].failure! : `every sub-cohort failed: ${this.sums.map((s) => s.failure).join('; ')}`);
  }

  /**
   * A sum that cannot complete. Alone, it fails the round (the caller says so). One of several: its members
   * leave the round (unless they delivered everything) and the other sub-cohorts go on.
   */
  private fail(cohort: Cohort, sum: SecureSum, reason: string, o: { keepMembers?: boolean } = {}): void {
    sum.failure = reason;
    if (this.sums.length === 1) return;
    this.ctx.log.warn(`round ${this.ctx.round + 1}: sub-cohort ${sum.members.join(', ')} refused: ${reason}`);
    if (!o.keepMembers) for (const envoy of sum.survivors(cohort)) cohort.drop(envoy, `its sub-cohort cannot complete: ${reason}`);
  }

  private registeredExamples(envoy: string): number {
    const record = this.ctx.registry.record(envoy);
    if (!record) throw new RoundFailure(`envoy ${envoy} is not registered`);
    return admittedExamples(envoy, record.descriptor.counts.train, this.ctx.registry, this.ctx.bus.trust).examples;
  }

  /** Closes a stage of one sum in the addon (its messages for the next one), once enough of its envoys are left. */
  private closed(cohort: Cohort, sum: SecureSum, stage: Exclude<SecAggStage, 'unmask'>): Map<string, Uint8Array> {
    if (sum.failure) return new Map();
    const short = sum.shortfall(sum.survivors(cohort).length, stage.replace('_', ' '), cohort);
    if (short) { this.fail(cohort, sum, short); return new Map(); }
    try {
      return sum.aggregator.close(stage);
    } catch (error) {
      this.fail(cohort, sum, (error as Error).message);
      return new Map();
    }
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
    const sum = this.sumOf.get(envoy)!;
    if (sum.failure) return { accepted: false, reason: `its sub-cohort was refused: ${sum.failure}` };
    // Uploads are handled concurrently: one envoy's message of a stage is taken once.
    this.receiving.add(envoy);
    try {
      const message = await this.payloadOf(upload);
      if (stage !== cohort.stage || !cohort.has(envoy)) return { accepted: false, reason: `the ${stage} stage closed meanwhile` };
      if (stage === 'advertise') sum.keepAdvertisement(envoy, upload, message, this.ctx.bus.trust);
      sum.aggregator.receive(stage, envoy, message);
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

  private async payloadOf(upload: SecAggUpload): Promise<Uint8Array> {
    if (upload.result?.update) throw new Error('it sent its update in the clear, which secure aggregation never accepts');
    if (upload.stage !== 'masked_input') {
      if (!upload.message) throw new Error(`its ${upload.stage} message is empty`);
      return upload.message;
    }
    if (!upload.blob) throw new Error('its masked input carries no blob reference');
    return fetchBlob(this.ctx.bus, upload.blob);
  }

  /** Relays one sum's per-envoy messages; a member still in the round but left out by the protocol is dropped. */
  private async deliver(cohort: Cohort, sum: SecureSum, stage: 'keys' | 'shares' | 'unmask', messages: Map<string, Uint8Array>, advertisements?: SignedAdvertisement[]): Promise<void> {
    if (sum.failure) return;
    for (const envoy of sum.survivors(cohort)) {
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
