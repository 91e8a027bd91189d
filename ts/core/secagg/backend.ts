/**
 * Which implementation of the secure-aggregation API (bindings/index.d.ts) this process uses:
 * the native addon (bindings/native.cjs, napi-rs: fast AES, work off the main thread on both cores) or,
 * where it cannot load, the WASM build of the same Rust crates (bindings/wasm/pkg, built by
 * `bash bindings/wasm/build.sh`: software AES, synchronous). Both are presented through one interface,
 * `SecAggBackend`; the choice is logged once.
 *
 * SECFLOW_SECAGG_BACKEND=wasm forces WASM, =native forbids the fallback; unset = native, else WASM.
 */
import { createRequire } from 'node:module';
import type * as Native from '../../../bindings/native.d.cts';
import type { AsWasm } from '../../../bindings/wasm-types.d.ts';
import { Logger } from '../log.ts';

export type NativeAddon = typeof Native;

export class SecAggUnavailableError extends Error {
  override name = 'SecAggUnavailableError';
}

/** The addon's loader proper, with the module path open so a test can point it at a missing build. */
export function loadNativeFrom(modulePath: string): NativeAddon {
  try {
    return createRequire(import.meta.url)(modulePath) as NativeAddon;
  } catch (error) {
    throw new SecAggUnavailableError('secure aggregation needs the native addon, which could not be loaded ' +
      `(${(error as Error).message.split('\n')[0]}); build it with \`bash bindings/build.sh\``, { cause: error });
  }
}

/** The one interface both backends satisfy: the addon's API (bindings/index.d.ts). */
export type SecAggBackend = NativeAddon;
export type BackendKind = 'native' | 'wasm';

export interface LoadedBackend {
  kind: BackendKind;
  api: SecAggBackend;
  /** "native addon" or "WASM (native addon unavailable: <reason>)". */
  description: string;
}

const NATIVE_MODULE = '../../../bindings/native.cjs';
const WASM_MODULE = '../../../bindings/wasm/pkg/secflow_wasm.js';

let cached: LoadedBackend | undefined;

/** The backend for this process, chosen (and logged) on first use. */
export function loadBackend(): LoadedBackend {
  if (cached) return cached;
  cached = chooseBackend(process.env.SECFLOW_SECAGG_BACKEND);
  new Logger('secagg').info(`secure aggregation backend: ${cached.description}`);
  return cached;
}

/** The choice proper, without caching or logging; module paths open for tests. */
export function chooseBackend(wanted: string | undefined, nativeModule = NATIVE_MODULE, wasmModule = WASM_MODULE): LoadedBackend {
  const mode = (wanted ?? '').trim().toLowerCase();
  if (mode !== '' && mode !== 'native' && mode !== 'wasm' && mode !== 'auto') {
    throw new SecAggUnavailableError(`SECFLOW_SECAGG_BACKEND must be native, wasm or auto, got ${JSON.stringify(wanted)}`);
  }
  if (mode === 'wasm') return { kind: 'wasm', api: loadWasmFrom(wasmModule), description: 'WASM (SECFLOW_SECAGG_BACKEND=wasm)' };
  let nativeError: Error;
  try {
    return { kind: 'native', api: loadNativeFrom(nativeModule), description: 'native addon' };
  } catch (error) {
    if (mode === 'native') throw error;
    nativeError = error as Error;
  }
  const reason = firstLine((nativeError.cause as Error | undefined)?.message ?? nativeError.message);
  try {
    return { kind: 'wasm', api: loadWasmFrom(wasmModule), description: `WASM (native addon unavailable: ${reason})` };
  } catch (error) {
    throw new SecAggUnavailableError(`secure aggregation needs the native addon or its WASM build, and neither loads: native: ${reason}; ` +
      `WASM: ${firstLine((error as Error).message)}. Build one: \`bash bindings/build.sh\` (native) or ` +
      '`bash bindings/wasm/setup-toolchain.sh && bash bindings/wasm/build.sh` (WASM)');
  }
}

/** The WASM build behind the addon's interface (Buffers out, Promises where the addon has them). */
export function loadWasm(): SecAggBackend {
  return loadWasmFrom(WASM_MODULE);
}

export function loadWasmFrom(modulePath: string): SecAggBackend {
  let wasm: WasmModule;
  try {
    wasm = createRequire(import.meta.url)(modulePath) as WasmModule;
  } catch (error) {
    throw new SecAggUnavailableError(`the WASM build of secure aggregation could not be loaded (${firstLine((error as Error).message)}); ` +
      'build it with `bash bindings/wasm/setup-toolchain.sh && bash bindings/wasm/build.sh`');
  }
  return adaptWasm(wasm);
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}

// ---- the WASM module as wasm-bindgen emits it (bindings/wasm/src/) -----------------------------------
// The addon's API with Uint8Array wherever the addon has Buffer (bindings/wasm-types.d.ts): derived from
// the declarations napi-rs generates (bindings/index.d.ts), never written out a second time, and
// type-checking does not need the WASM build.

type WasmModule = AsWasm<Omit<NativeAddon, 'default'>>;
type WasmQuantizer = AsWasm<Native.Quantizer>;
type WasmClient = AsWasm<Native.SecAggClient>;
type WasmServer = AsWasm<Native.SecAggServer>;
type WasmOutgoing = AsWasm<Native.Outgoing>;

/** A Buffer view of the bytes WASM returned (no copy). */
const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const outgoing = (out: WasmOutgoing[]): Native.Outgoing[] => out.map((o) => ({ recipient: o.recipient, message: buf(o.message) }));

function adaptWasm(wasm: WasmModule): SecAggBackend {
  class Quantizer {
    readonly #q: WasmQuantizer;
    constructor(clip: number, bits: number, maxSummands: number) { this.#q = new wasm.Quantizer(clip, bits, maxSummands); }
    get step(): number { return this.#q.step; }
    get levels(): number { return this.#q.levels; }
    get bits(): number { return this.#q.bits; }
    errorBound(n: number): number { return this.#q.errorBound(n); }
    quantize(values: Float32Array, seed?: Buffer | null): Uint32Array { return this.#q.quantize(values, seed); }
    dequantizeSum(sum: Uint32Array, nSummands: number): Float32Array { return this.#q.dequantizeSum(sum, nSummands); }
  }
  class SecAggClient {
    readonly #c: WasmClient;
    constructor(config: Native.RoundConfig, clientId: number, seed?: Buffer | null) { this.#c = new wasm.SecAggClient(config, clientId, seed); }
    get clientId(): number { return this.#c.clientId; }
    advertiseKeys(): Buffer { return buf(this.#c.advertiseKeys()); }
    shareKeys(keysBroadcast: Buffer): Buffer { return buf(this.#c.shareKeys(keysBroadcast)); }
    // Not async: argument errors throw synchronously, protocol errors reject, as with the addon.
    maskedInput(shareBundle: Buffer, input: Uint32Array): Promise<Buffer> { return this.#c.maskedInput(shareBundle, input).then(buf); }
    unmask(unmaskRequest: Buffer): Buffer { return buf(this.#c.unmask(unmaskRequest)); }
  }
  class SecAggServer {
    readonly #s: WasmServer;
    constructor(config: Native.RoundConfig) { this.#s = new wasm.SecAggServer(config); }
    receiveAdvertise(message: Buffer): void { this.#s.receiveAdvertise(message); }
    finishAdvertise(): Native.Outgoing[] { return outgoing(this.#s.finishAdvertise()); }
    receiveShareKeys(message: Buffer): void { this.#s.receiveShareKeys(message); }
    finishShareKeys(): Native.Outgoing[] { return outgoing(this.#s.finishShareKeys()); }
    receiveMaskedInput(message: Buffer): void { this.#s.receiveMaskedInput(message); }
    finishMaskedInput(): Native.Outgoing[] { return outgoing(this.#s.finishMaskedInput()); }
    receiveUnmaskResponse(message: Buffer): void { this.#s.receiveUnmaskResponse(message); }
    finish(): Promise<Native.AggregateResult> { return this.#s.finish(); }
  }
  // `default` is only the ESM-interop view of the CommonJS addon, not part of its API.
  const api: Omit<SecAggBackend, 'default'> = {
    Quantizer,
    SecAggClient,
    SecAggServer,
    neighboursOf: (config, clientId) => wasm.neighboursOf(config, clientId),
    expandMask: (seed, len) => wasm.expandMask(seed, len),
    unmaskAggregate: (sum, terms, bits) => wasm.unmaskAggregate(sum, terms, bits),
    shamirSplit: (secret, threshold, n, seed) => {
      const s = wasm.shamirSplit(secret, threshold, n, seed);
      return { commitments: s.commitments.map(buf), shares: s.shares.map((x) => ({ holder: x.holder, share: buf(x.share) })) };
    },
    shamirReconstruct: (commitments, shares) => buf(wasm.shamirReconstruct(commitments, shares)),
  };
  return api as SecAggBackend;
}
