/**
 * The director's side of one SecAgg+ round: wraps the addon's server, maps envoy names to client ids, and
 * turns the unmasked sum into the FedAvg delta. It sees masked vectors, encrypted shares and, at the end,
 * the sum; an individual update is never reconstructable from what passes through here.
 */
import { unpack } from 'msgpackr';
import type { SecAggStage } from '../../core/messages.ts';
import { aggregateErrorBound, decodeAggregate, quantizerFor, type Quantizer } from '../../core/secagg/codec.ts';
import { asBuffer, protocolError, SecAggProtocolError } from '../../core/secagg/errors.ts';
import type { NativeAddon } from '../../core/secagg/native.ts';
import { cohortIds, roundConfigOf, type SecureRoundPlan } from '../../core/secagg/params.ts';

export interface SecureAggregate {
  /** FedAvg delta of the included envoys (example-weighted mean). */
  delta: Float32Array;
  included: string[];
  /** Envoys that shared keys but sent no input: their masks were removed with the survivors' shares. */
  recovered: string[];
  examples: number;
  /** Worst-case |error| per coordinate against plain FedAvg of the same (clipped) deltas. */
  errorBound: number;
}

/** Field of each uploaded message that names its sender. */
const SENDER_FIELD: Record<SecAggStage, string> = {
  advertise: 'client', share_keys: 'sender', masked_input: 'sender', unmask: 'sender',
};

export class SecureAggregator {
  private readonly server: InstanceType<NativeAddon['SecAggServer']>;
  private readonly quantizer: Quantizer;

  constructor(native: NativeAddon, readonly plan: SecureRoundPlan) {
    try {
      this.server = new native.SecAggServer(roundConfigOf({ ...plan, cohort: cohortIds(plan) }));
      this.quantizer = quantizerFor(native, plan.clip, plan.bits, plan.ids.size);
    } catch (error) {
      throw protocolError('secure aggregation: invalid round parameters', error);
    }
  }

  /** Throws SecAggProtocolError naming the envoy and the problem; the caller drops that envoy. */
  receive(stage: SecAggStage, envoy: string, message: Uint8Array): void {
    const context = `secure aggregation: ${stage.replace('_', ' ')} from ${envoy} rejected`;
    this.checkSender(stage, envoy, message, context);
    const bytes = asBuffer(message);
    try {
      switch (stage) {
        case 'advertise': return this.server.receiveAdvertise(bytes);
        case 'share_keys': return this.server.receiveShareKeys(bytes);
        case 'masked_input': return this.server.receiveMaskedInput(bytes);
        case 'unmask': return this.server.receiveUnmaskResponse(bytes);
      }
    } catch (error) {
      throw protocolError(context, error);
    }
  }

  /** Closes a stage; returns the next message for each envoy still in the round. */
  close(stage: Exclude<SecAggStage, 'unmask'>): Map<string, Uint8Array> {
    let outgoing;
    try {
      outgoing = stage === 'advertise' ? this.server.finishAdvertise()
        : stage === 'share_keys' ? this.server.finishShareKeys() : this.server.finishMaskedInput();
    } catch (error) {
      throw protocolError(`secure aggregation: closing the ${stage.replace('_', ' ')} stage`, error);
    }
    return new Map(outgoing.map((o) => [this.nameOf(o.recipient), o.message]));
  }

  async finish(): Promise<SecureAggregate> {
    let result;
    try {
      result = await this.server.finish();
    } catch (error) {
      throw protocolError('secure aggregation: unmasking the sum', error);
    }
    const included = result.included.map((id) => this.nameOf(id));
    const examples = included.reduce((n, e) => n + this.plan.examples.get(e)!, 0);
    const input = { summands: included.length, meanExamples: this.plan.meanExamples, survivorExamples: examples };
    return {
      delta: decodeAggregate(this.quantizer, { sum: result.sum, ...input }),
      included, recovered: result.dropped.map((id) => this.nameOf(id)), examples,
      errorBound: aggregateErrorBound(this.quantizer, input),
    };
  }

  /** Over an unauthenticated bus an envoy could claim another's id; the addon would then blame the wrong one. */
  private checkSender(stage: SecAggStage, envoy: string, message: Uint8Array, context: string): void {
    const expected = this.plan.ids.get(envoy);
    if (expected === undefined) throw new SecAggProtocolError(`${context}: ${envoy} is not in this round's cohort`, 'UnknownClient');
    let sender: unknown;
    try {
      sender = (unpack(message) as Record<string, unknown>)?.[SENDER_FIELD[stage]];
    } catch (error) {
      throw new SecAggProtocolError(`${context}: not msgpack (${(error as Error).message})`, 'Malformed');
    }
    if (sender !== expected) {
      throw new SecAggProtocolError(`${context}: the message claims client id ${String(sender)}, ${envoy} has ${expected}`, 'UnknownClient');
    }
  }

  private nameOf(id: number): string {
    const name = this.plan.names.get(id);
    if (name === undefined) throw new SecAggProtocolError(`secure aggregation: the addon named client ${id}, which is not in the cohort`);
    return name;
  }
}
