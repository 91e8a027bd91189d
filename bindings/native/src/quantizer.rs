//! `Quantizer` class: clip + unbiased stochastic rounding into integers mod 2^bits.

use crate::{invalid_arg, seed32};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn fp_err(e: fixedpoint::Error) -> Error {
    invalid_arg(e.to_string())
}

#[napi]
pub struct Quantizer {
    inner: fixedpoint::Quantizer,
}

#[napi]
impl Quantizer {
    /// Values are clipped to [-clip, clip]; sums of up to `maxSummands`
    /// quantized vectors never wrap mod 2^bits.
    #[napi(constructor)]
    pub fn new(clip: f64, bits: u32, max_summands: u32) -> Result<Self> {
        Ok(Self {
            inner: fixedpoint::Quantizer::new(clip as f32, bits, max_summands).map_err(fp_err)?,
        })
    }

    /// Float width of one quantization step.
    #[napi(getter)]
    pub fn step(&self) -> f64 {
        self.inner.step()
    }

    /// Largest code of a single element.
    #[napi(getter)]
    pub fn levels(&self) -> f64 {
        self.inner.levels() as f64
    }

    #[napi(getter)]
    pub fn bits(&self) -> u32 {
        self.inner.bits()
    }

    /// Worst-case absolute error per coordinate of `dequantizeSum(_, n)`.
    #[napi]
    pub fn error_bound(&self, n: u32) -> f64 {
        self.inner.error_bound(n)
    }

    /// Quantize with stochastic rounding. `seed` (32 bytes) makes it
    /// deterministic; without it the OS RNG seeds the rounding.
    #[napi]
    pub fn quantize(&self, values: Float32Array, seed: Option<Buffer>) -> Result<Uint32Array> {
        let seed = match seed {
            Some(s) => seed32(&s, "seed")?,
            None => {
                let mut s = [0u8; 32];
                OsRng.fill_bytes(&mut s);
                s
            }
        };
        let mut rng = ChaCha20Rng::from_seed(seed);
        Ok(Uint32Array::new(self.inner.quantize(&values, &mut rng)))
    }

    /// Decode the sum (mod 2^bits) of `nSummands` quantized vectors.
    #[napi]
    pub fn dequantize_sum(&self, sum: Uint32Array, n_summands: u32) -> Result<Float32Array> {
        Ok(Float32Array::new(
            self.inner
                .dequantize_sum(&sum, n_summands)
                .map_err(fp_err)?,
        ))
    }
}
