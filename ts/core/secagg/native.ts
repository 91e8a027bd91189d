/**
 * The Rust addon (bindings/native.cjs) from ESM. Loaded lazily: a federation without secure aggregation
 * must run on a machine where the addon was never built.
 */
import { loadBackend, type NativeAddon } from './backend.ts';

export { loadNativeFrom, SecAggUnavailableError, type NativeAddon } from './backend.ts';
export type { AggregateResult, Outgoing, RoundConfig } from '../../../bindings/native.d.cts';

let cached: NativeAddon | undefined;

/**
 * The secure-aggregation API for this process: the native addon, or its WASM build where the addon
 * cannot load (or SECFLOW_SECAGG_BACKEND=wasm); see backend.ts, which logs the choice once.
 */
export function loadNative(): NativeAddon {
  cached ??= loadBackend().api;
  return cached;
}
