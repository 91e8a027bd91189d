// The WASM build's types (bindings/wasm/), derived from the addon's declarations that napi-rs generates
// (bindings/index.d.ts, from bindings/native/src): the same API with Uint8Array wherever the addon has
// Buffer. Declared once there; mapped here; used by the WASM package's .d.ts and ts/core/secagg/backend.ts.
import type * as Native from './index.js';

/** `T` as the WASM build takes and returns it: Buffers become Uint8Arrays, at any depth. */
export type AsWasm<T> = T extends Buffer ? Uint8Array
  : T extends Uint8Array | Uint32Array | Float32Array | string | number | boolean | null | undefined | void ? T
  : T extends Promise<infer R> ? Promise<AsWasm<R>>
  : T extends abstract new (...args: infer A) => infer R ? new (...args: { [I in keyof A]: AsWasm<A[I]> }) => AsWasm<R>
  : T extends (...args: infer A) => infer R ? (...args: { [I in keyof A]: AsWasm<A[I]> }) => AsWasm<R>
  : T extends (infer U)[] ? AsWasm<U>[]
  : T extends object ? { [K in keyof T]: AsWasm<T[K]> }
  : T;

export type RoundConfig = AsWasm<Native.RoundConfig>;
export type Outgoing = AsWasm<Native.Outgoing>;
export type AggregateResult = AsWasm<Native.AggregateResult>;
export type MaskTerm = AsWasm<Native.MaskTerm>;
export type ShamirShare = AsWasm<Native.ShamirShare>;
export type ShamirSharing = AsWasm<Native.ShamirSharing>;
