//! WebAssembly build of the napi addon's API (bindings/index.d.ts), for
//! platforms without the native addon and for browsers.
//!
//! Same names, arguments and results as the addon, with `Uint8Array` where
//! the addon has `Buffer` (ts/core/secagg/backend.ts wraps them back into
//! Buffers). What the addon runs off-thread (`maskedInput`, `finish`,
//! `unmaskAggregate`) runs synchronously here and returns an already settled
//! Promise: argument errors throw, protocol errors reject, as in the addon.
//! rayon falls back to the calling thread on wasm32, and AES runs in its
//! constant-time software implementation. Errors from the protocol carry the
//! addon's "[Code] text" messages. Glue only: all logic is in crates/.

use js_sys::{Array, Object, Promise, Reflect, Uint32Array, Uint8Array};
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use secagg::{decode, encode, shamir};
use wasm_bindgen::prelude::*;

mod client;
mod js;
mod quantizer;
mod server;
mod vectors;

use js::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface RoundConfig {
  experimentId: string;
  round: number;
  cohort: number[];
  neighbours: number;
  threshold: number;
  bits: number;
  vectorLen: number;
  graphSeed: Uint8Array;
}
export interface Outgoing { recipient: number; message: Uint8Array; }
export interface AggregateResult { sum: Uint32Array; included: number[]; dropped: number[]; }
export interface MaskTerm { seed: Uint8Array; op: 'add' | 'sub'; }
export interface ShamirShare { holder: number; share: Uint8Array; }
export interface ShamirSharing { commitments: Uint8Array[]; shares: ShamirShare[]; }
"#;

pub(crate) type Res<T> = Result<T, JsError>;

pub(crate) fn to_js(e: secagg::Error) -> JsError {
    JsError::new(&format!("[{}] {e}", e.code()))
}

pub(crate) fn fp_err(e: fixedpoint::Error) -> JsError {
    JsError::new(&e.to_string())
}

pub(crate) fn seed32(buf: &[u8], what: &str) -> Res<[u8; 32]> {
    buf.try_into()
        .map_err(|_| JsError::new(&format!("{what} must be exactly 32 bytes, got {}", buf.len())))
}

pub(crate) fn random_seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    OsRng.fill_bytes(&mut s);
    s
}
