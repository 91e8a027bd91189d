/**
 * An envoy's side of one SecAgg+ round: wraps the addon's client and the quantizer, in stage order. It only
 * ever hands out masked or encrypted bytes; the update itself never leaves this object.
 */
import type { SecAggTask } from '../../core/messages.ts';
import { encodeUpdate, quantizerFor, type Quantizer } from '../../core/secagg/codec.ts';
import { asBuffer, protocolError } from '../../core/secagg/errors.ts';
import type { NativeAddon } from '../../core/secagg/native.ts';
import { roundConfigOf } from '../../core/secagg/params.ts';

export type ParticipantParams = Omit<SecAggTask, 'upload_subject' | 'stage_timeout_ms' | 'round_timeout_ms'>;

export class SecureParticipant {
  private readonly client: InstanceType<NativeAddon['SecAggClient']>;
  private readonly quantizer: Quantizer;

  /** seed: 32 bytes, only for reproducible tests (keys and rounding then repeat). */
  constructor(native: NativeAddon, private readonly params: ParticipantParams, round: number, private readonly seed?: Uint8Array) {
    const config = roundConfigOf({
      experimentId: params.experiment_id, round, cohort: params.cohort, neighbours: params.neighbours,
      threshold: params.threshold, bits: params.bits, vectorLen: params.vector_len, graphSeed: params.graph_seed,
    });
    try {
      this.client = new native.SecAggClient(config, params.client_id, seed ? asBuffer(seed) : null);
      this.quantizer = quantizerFor(native, params.clip, params.bits, params.cohort.length);
    } catch (error) {
      throw protocolError('secure aggregation: invalid round parameters', error);
    }
  }

  advertise(): Uint8Array {
    return this.stage('advertising keys', () => this.client.advertiseKeys());
  }

  shareKeys(keysBroadcast: Uint8Array): Uint8Array {
    return this.stage('sharing keys', () => this.client.shareKeys(asBuffer(keysBroadcast)));
  }

  async maskedInput(shareBundle: Uint8Array, delta: Float32Array): Promise<{ message: Uint8Array; clipped: number }> {
    if (delta.length !== this.params.vector_len) {
      throw new Error(`secure aggregation: the update has ${delta.length} values, the round expects ${this.params.vector_len}`);
    }
    const encoded = encodeUpdate(this.quantizer, delta, this.params.scale, this.params.clip, this.seed);
    try {
      return { message: await this.client.maskedInput(asBuffer(shareBundle), encoded.input), clipped: encoded.clipped };
    } catch (error) {
      throw protocolError('secure aggregation: masking the input', error);
    }
  }

  unmask(unmaskRequest: Uint8Array): Uint8Array {
    return this.stage('answering the unmask request', () => this.client.unmask(asBuffer(unmaskRequest)));
  }

  private stage(what: string, run: () => Buffer): Uint8Array {
    try {
      return run();
    } catch (error) {
      throw protocolError(`secure aggregation: ${what}`, error);
    }
  }
}
