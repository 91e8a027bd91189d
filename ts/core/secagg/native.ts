/**
 * The Rust addon (bindings/native.cjs) from ESM. Loaded lazily: a federation without secure aggregation
 * must run on a machine where the addon was never built.
 */
import { createRequire } from 'node:module';
import type * as Native from '../../../bindings/native.d.cts';
import { loadBackend } from './backend.ts';

export type NativeAddon = typeof Native;
export type { AggregateResult, Outgoing, RoundConfig } from '../../../bindings/native.d.cts';

let cached: NativeAddon | undefined;

export class SecAggUnavailableError extends Error {
  override name = 'SecAggUnavailableError';
}

/**
 * The secure-aggregation API for this process: the native addon, or its WASM build where the addon
 * cannot load (or SECFLOW_SECAGG_BACKEND=wasm); see backend.ts, which logs the choice once.
 */
export function loadNative(): NativeAddon {
  cached ??= loadBackend().api;
  return cached;
}

/** The loader proper, with the module path open so a test can point it at a missing build. */
export function loadNativeFrom(modulePath: string): NativeAddon {
  try {
    return createRequire(import.meta.url)(modulePath) as NativeAddon;
  } catch (error) {
    throw new SecAggUnavailableError('secure aggregation needs the native addon, which could not be loaded ' +
      `(${(error as Error).message.split('\n')[0]}); build it with \`bash bindings/build.sh\``, { cause: error });
  }
}
