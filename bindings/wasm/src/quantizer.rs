//! The fixed-point quantizer (crates/fixedpoint), as the addon's `Quantizer`.

use super::*;

/// Clip to [-clip, clip] + unbiased stochastic rounding into [0, levels].
#[wasm_bindgen]
pub struct Quantizer {
    inner: fixedpoint::Quantizer,
}

#[wasm_bindgen]
impl Quantizer {
    #[wasm_bindgen(constructor)]
    pub fn new(clip: f64, bits: u32, max_summands: u32) -> Res<Quantizer> {
        Ok(Self {
            inner: fixedpoint::Quantizer::new(clip as f32, bits, max_summands).map_err(fp_err)?,
        })
    }

    #[wasm_bindgen(getter)]
    pub fn step(&self) -> f64 {
        self.inner.step()
    }

    #[wasm_bindgen(getter)]
    pub fn levels(&self) -> f64 {
        self.inner.levels() as f64
    }

    #[wasm_bindgen(getter)]
    pub fn bits(&self) -> u32 {
        self.inner.bits()
    }

    #[wasm_bindgen(js_name = errorBound)]
    pub fn error_bound(&self, n: u32) -> f64 {
        self.inner.error_bound(n)
    }

    /// seed: 32 bytes for deterministic rounding; omitted = OS randomness.
    pub fn quantize(&self, values: &[f32], seed: Option<Vec<u8>>) -> Res<Vec<u32>> {
        let seed = match seed {
            Some(s) => seed32(&s, "seed")?,
            None => random_seed(),
        };
        Ok(self.inner.quantize(values, &mut ChaCha20Rng::from_seed(seed)))
    }

    #[wasm_bindgen(js_name = dequantizeSum)]
    pub fn dequantize_sum(&self, sum: &[u32], n_summands: u32) -> Res<Vec<f32>> {
        self.inner.dequantize_sum(sum, n_summands).map_err(fp_err)
    }
}
