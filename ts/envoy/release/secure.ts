/**
 * Secure release, an envoy's part in a secure-aggregation round: receive and check the model, advertise keys
 * bound to the task's digest, check the cohort's signed advertisements, share keys, train, then send the
 * masked update and reveal the shares the director asks for. Each stage's message from
 * the director arrives on the envoy's secagg subject and is handed to the task waiting for it.
 * The update leaves this process only masked; logs name stages, never keys, shares or values.
 */
import {
  headerMismatch, headerOf, kinds, type SecAggDelivery, type SecAggStage, type SecAggTask, type SecAggUpload, type SignedAdvertisement, type TrainTask,
} from '../../core/messages.ts';
import { loadNative } from '../../core/secagg/native.ts';
import { subjects } from '../../core/subjects.ts';
import { advertisementStatement, boundExperimentId, taskDigest } from '../../core/task-digest.ts';
import { offerBlob, type OfferedBlob } from '../../core/transport/blobs.ts';
import { SecureParticipant } from './participant.ts';
import { DirectorRefused } from '../director-checks/index.ts';
import type { ReceivedModel, Release, ReleaseDeps, TrainedUpdate } from './types.ts';

type Inbound = Exclude<SecAggDelivery['stage'], 'abort'>;
interface Slot { promise: Promise<Uint8Array>; resolve(m: Uint8Array): void; reject(e: Error): void }

export class SecureRelease implements Release {
  private readonly inbox = new Map<Inbound, Slot>();
  private aborted?: Error;
  private readonly params: SecAggTask;
  /** The cohort's signed advertisements, relayed with the keys. */
  private advertisements: SignedAdvertisement[] = [];

  constructor(private readonly deps: ReleaseDeps, private readonly task: TrainTask) {
    if (!task.secagg) throw new Error('not a secure aggregation task');
    this.params = task.secagg;
  }

  matches(d: SecAggDelivery): boolean {
    return headerMismatch(this.task, d) === undefined;
  }

  deliver(d: SecAggDelivery): { accepted: boolean; reason?: string } {
    if (d.stage === 'abort') {
      this.aborted = new Error(`the director ended the round (${d.reason ?? 'no reason given'})`);
      this.inbox.forEach((slot) => slot.reject(this.aborted!));
      return { accepted: true };
    }
    if (!d.message) return { accepted: false, reason: `the ${d.stage} message is empty` };
    if (d.stage === 'keys') this.advertisements = d.advertisements ?? [];
    this.slot(d.stage).resolve(d.message);
    return { accepted: true };
  }

  /** Resolves true once the masked update left (the director accepted it), false if the round ended before. */
  async run(receive: () => Promise<ReceivedModel>, train: (model: ReceivedModel) => Promise<TrainedUpdate>): Promise<boolean> {
    const { log, bus, envoy } = this.deps;
    const { stage_timeout_ms: stageMs, round_timeout_ms: roundMs } = this.params;
    let stage: SecAggStage = 'advertise';
    let offered: OfferedBlob | undefined;
    let released = false;
    try {
      const model = await receive();
      // Keys bound to the task this envoy holds: masks of envoys holding another task cannot cancel with ours.
      const digest = taskDigest(this.task, bus.federation, model.sha256);
      const bound = { ...this.params, experiment_id: boundExperimentId(this.params.experiment_id, digest) };
      const participant = new SecureParticipant(loadNative(), bound, this.task.round);
      const advert = participant.advertise();
      const signature = bus.trust.attest(advertisementStatement(envoy, this.params.client_id, digest, advert));
      await this.upload({ stage, message: advert, digest, signature });
      log.info('secure aggregation: advertised keys');
      // The director relays keys once every envoy advertised (or its stage timed out).
      const keys = await this.receive('keys', 2 * stageMs);
      stage = 'share_keys';
      const refusal = this.deps.checks.keysProblem({
        params: this.params, round: this.task.round, digest, minCohort: this.deps.minCohort, keys, advertisements: this.advertisements,
      });
      if (refusal) throw new DirectorRefused(refusal);
      await this.upload({ stage, message: participant.shareKeys(keys) });
      log.info('secure aggregation: shared keys');
      const trained = await train(model);
      const bundle = await this.receive('shares', roundMs);
      stage = 'masked_input';
      const masked = await participant.maskedInput(bundle, trained.delta.values);
      if (masked.clipped) log.warn(`secure aggregation: ${masked.clipped} weighted delta values exceeded the clip range ±${this.params.clip} and were clipped`);
      offered = offerBlob(this.deps.bus, masked.message, [this.deps.director], this.deps.chunkBytes);
      await this.upload({ stage, blob: offered.refFor(this.deps.director), result: trained.result });
      released = true;
      log.info('secure aggregation: sent masked input');
      // Other envoys may still be training: the unmask request can take as long as the round.
      const unmaskRequest = await this.receive('unmask', roundMs);
      stage = 'unmask';
      await this.upload({ stage, message: participant.unmask(unmaskRequest) });
      log.info('secure aggregation: answered the unmask request');
    } catch (error) {
      const message = (error as Error).message;
      if (this.aborted) {
        log.info(`secure aggregation: stopped at the ${stage.replace('_', ' ')} stage: ${message}`);
        return released;
      }
      const rule = error instanceof DirectorRefused ? error.refusal.rule : undefined;
      if (rule) log.warn(`secure aggregation: nothing sent beyond the ${stage.replace('_', ' ')} stage: ${message}`);
      else log.error(`secure aggregation failed at the ${stage.replace('_', ' ')} stage: ${message}`);
      await this.upload({ stage, error: message, ...(rule ? { rule } : {}) }).catch(() => undefined); // the director drops us either way
    } finally {
      offered?.close();
    }
    return released;
  }

  private slot(stage: Inbound): Slot {
    let slot = this.inbox.get(stage);
    if (!slot) {
      let resolve!: (m: Uint8Array) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<Uint8Array>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => undefined); // a message nobody waits for any more must not crash the envoy
      slot = { promise, resolve, reject };
      if (this.aborted) reject(this.aborted);
      this.inbox.set(stage, slot);
    }
    return slot;
  }

  private async receive(stage: Inbound, timeoutMs: number): Promise<Uint8Array> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${stage} message from the director within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      return await Promise.race([this.slot(stage).promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async upload(body: Pick<SecAggUpload, 'stage' | 'blob' | 'error' | 'rule' | 'result'> & { message?: Uint8Array; digest?: Uint8Array; signature?: Uint8Array }): Promise<void> {
    const { message, digest, signature, ...rest } = body;
    // The addon's and node:crypto's Buffers are views on Node's pool: zod's Uint8Array<ArrayBuffer> is the same thing at runtime.
    const bytes = (b?: Uint8Array) => b as Uint8Array<ArrayBuffer> | undefined;
    const full = {
      ...headerOf(this.task), envoy: this.deps.envoy, ...rest, ...(message ? { message: bytes(message) } : {}),
      ...(digest ? { digest: bytes(digest), signature: bytes(signature) } : {}),
    };
    // The director fetches a masked input before it answers, so that upload gets as long as a result does.
    const { bus } = this.deps;
    const subject = subjects.secaggUploads(bus.federation, this.task.experiment, this.task.run_id, this.deps.envoy);
    const ack = await bus.request(kinds.secaggUpload, subject, this.deps.director, full,
      body.blob ? 120_000 : 30_000, `sending the ${body.stage.replace('_', ' ')} message`);
    if (!ack.accepted) throw new Error(`the director refused the ${body.stage.replace('_', ' ')} message: ${ack.reason}`);
  }
}
