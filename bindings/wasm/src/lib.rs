//! Experimental WebAssembly exports (subset of the napi addon's API).
//! rayon falls back to the calling thread on wasm32, and AES runs in its
//! constant-time software implementation (~70 MB/s of mask in Node).

use rand_chacha::rand_core::SeedableRng;
use wasm_bindgen::prelude::*;

fn seed32(seed: &[u8]) -> Result<[u8; 32], JsError> {
    seed.try_into().map_err(|_| JsError::new("seed must be exactly 32 bytes"))
}

/// First `len` words of the PRG mask of a 32-byte seed (same as the addon).
#[wasm_bindgen(js_name = expandMask)]
pub fn expand_mask(seed: &[u8], len: u32) -> Result<Vec<u32>, JsError> {
    Ok(secagg::expand_mask(&seed32(seed)?, len as usize))
}

/// Quantize with stochastic rounding driven by a 32-byte seed.
#[wasm_bindgen]
pub fn quantize(values: &[f32], clip: f32, bits: u32, max_summands: u32, seed: &[u8]) -> Result<Vec<u32>, JsError> {
    let q = fixedpoint::Quantizer::new(clip, bits, max_summands)?;
    Ok(q.quantize(values, &mut rand_chacha::ChaCha20Rng::from_seed(seed32(seed)?)))
}

/// Decode the sum of `n_summands` quantized vectors.
#[wasm_bindgen(js_name = dequantizeSum)]
pub fn dequantize_sum(sum: &[u32], clip: f32, bits: u32, max_summands: u32, n_summands: u32) -> Result<Vec<f32>, JsError> {
    let q = fixedpoint::Quantizer::new(clip, bits, max_summands)?;
    Ok(q.dequantize_sum(sum, n_summands)?)
}
