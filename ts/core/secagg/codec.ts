/**
 * Float updates in and out of the aggregation ring Z/2^bits: weighting and clipping on the envoy, and on
 * the director turning the unmasked integer sum back into the FedAvg delta (see params.ts for the weights).
 */
import type { NativeAddon } from './native.ts';

export type Quantizer = InstanceType<NativeAddon['Quantizer']>;

/** Sums of up to cohortSize quantized vectors must not wrap, so the quantizer is sized by the cohort. */
export function quantizerFor(native: NativeAddon, clip: number, bits: number, cohortSize: number): Quantizer {
  return new native.Quantizer(clip, bits, cohortSize);
}

export interface EncodedUpdate { input: Uint32Array; clipped: number }

/** delta * scale, clipped to [-clip, clip] and stochastically rounded (seed only for reproducible tests). */
export function encodeUpdate(q: Quantizer, delta: Float32Array, scale: number, clip: number, seed?: Uint8Array): EncodedUpdate {
  const scaled = new Float32Array(delta.length);
  let clipped = 0;
  for (let i = 0; i < delta.length; i++) {
    const v = delta[i] * scale;
    if (!Number.isFinite(v)) throw new Error(`the update has a non-finite value at index ${i}; refusing to aggregate it`);
    if (v > clip || v < -clip) clipped++;
    scaled[i] = v;
  }
  return { input: q.quantize(scaled, seed ? Buffer.from(seed) : null), clipped };
}

export interface DecodeInput {
  sum: Uint32Array;
  /** Envoys whose inputs are in the sum. */
  summands: number;
  meanExamples: number;
  /** Training examples of those envoys together. */
  survivorExamples: number;
}

/** The example-weighted mean delta of the summed envoys: FedAvg's step. */
export function decodeAggregate(q: Quantizer, input: DecodeInput): Float32Array {
  const total = q.dequantizeSum(input.sum, input.summands);
  const factor = input.meanExamples / input.survivorExamples;
  for (let i = 0; i < total.length; i++) total[i] *= factor;
  return total;
}

/** Worst-case |error| per coordinate of decodeAggregate against the exact FedAvg of the clipped deltas. */
export function aggregateErrorBound(q: Quantizer, input: Omit<DecodeInput, 'sum'>): number {
  return q.errorBound(input.summands) * (input.meanExamples / input.survivorExamples);
}
