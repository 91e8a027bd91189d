//! Fixed-point encoding of `f32` model updates into integers mod 2^b.
//!
//! Secure aggregation sums vectors in the ring Z/2^b, so every client must
//! map its float update into that ring in a way that
//!
//! 1. survives summation of up to `max_summands` vectors *without wrapping*
//!    (otherwise the decoded sum is garbage), and
//! 2. is unbiased, so that the average of many quantized updates converges to
//!    the average of the float updates (plain round-to-nearest biases small
//!    gradients towards zero).
//!
//! Encoding: a value `x` is clipped to `[-clip, clip]`, shifted by `+clip`
//! so it is non-negative, and scaled to `[0, L]` where
//! `L = floor((2^b - 1) / max_summands)` is the number of quantization steps.
//! The scaled value is rounded *stochastically* (up with probability equal
//! to its fractional part). A sum of `n <= max_summands` encoded values is at
//! most `n * L <= 2^b - 1`, so it never wraps mod 2^b, and it decodes as
//! `sum * step - n * clip` with `step = 2 * clip / L`.
//!
//! Weighting by example count is the caller's job: scale the floats (and
//! choose `clip` accordingly) before quantizing.
//!
//! Elements are `u32`, so `bits <= 32`; for `bits < 32` the values are
//! smaller than `2^bits` and secure aggregation reduces its sums mod `2^bits`.

use rand_core::RngCore;

/// Errors raised for invalid quantizer parameters or inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("clip must be finite and > 0, got {0}")]
    InvalidClip(f32),
    #[error("modulus bits must be in 1..=32, got {0}")]
    InvalidBits(u32),
    #[error("max_summands must be >= 1, got {0}")]
    InvalidSummands(u32),
    #[error("modulus 2^{bits} is too small for {max_summands} summands (need at least one quantization step per value)")]
    ModulusTooSmall { bits: u32, max_summands: u32 },
    #[error("sum of {n} vectors requested but the quantizer was built for at most {max} summands")]
    TooManySummands { n: u32, max: u32 },
    #[error("sum element {index} = {value} exceeds the largest representable sum {max} (corrupted or wrapped aggregate)")]
    SumOutOfRange { index: usize, value: u32, max: u64 },
}

/// Clip-and-quantize codec for one aggregation round. See the crate docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantizer {
    clip: f32,
    bits: u32,
    max_summands: u32,
    /// Number of quantization steps per value: encoded values lie in `0..=levels`.
    levels: u64,
    /// Width of one quantization step in float units: `2 * clip / levels`.
    step: f64,
}

impl Quantizer {
    /// Build a quantizer for values clipped to `[-clip, clip]`, encoded mod
    /// `2^bits`, whose sums of up to `max_summands` vectors must not wrap.
    pub fn new(clip: f32, bits: u32, max_summands: u32) -> Result<Self, Error> {
        if !(clip.is_finite() && clip > 0.0) {
            return Err(Error::InvalidClip(clip));
        }
        if !(1..=32).contains(&bits) {
            return Err(Error::InvalidBits(bits));
        }
        if max_summands == 0 {
            return Err(Error::InvalidSummands(max_summands));
        }
        let max_value = (1u64 << bits) - 1;
        let levels = max_value / u64::from(max_summands);
        if levels == 0 {
            return Err(Error::ModulusTooSmall { bits, max_summands });
        }
        Ok(Self {
            clip,
            bits,
            max_summands,
            levels,
            step: 2.0 * f64::from(clip) / levels as f64,
        })
    }

    pub fn clip(&self) -> f32 {
        self.clip
    }
    pub fn bits(&self) -> u32 {
        self.bits
    }
    pub fn max_summands(&self) -> u32 {
        self.max_summands
    }
    /// Largest encoded value of a single vector element (`L`).
    pub fn levels(&self) -> u64 {
        self.levels
    }
    /// Float width of one quantization step, `2 * clip / L`.
    pub fn step(&self) -> f64 {
        self.step
    }
    /// Bit mask for reducing aggregates mod `2^bits`.
    pub fn modulus_mask(&self) -> u32 {
        if self.bits == 32 {
            u32::MAX
        } else {
            (1u32 << self.bits) - 1
        }
    }

    /// Quantize one vector with unbiased stochastic rounding.
    ///
    /// Non-finite inputs are treated as follows: NaN encodes as 0.0 (so a
    /// single bad coordinate cannot poison the aggregate), ±inf clip to ±clip.
    pub fn quantize<R: RngCore + ?Sized>(&self, x: &[f32], rng: &mut R) -> Vec<u32> {
        let clip = f64::from(self.clip);
        let inv_step = 1.0 / self.step;
        let levels = self.levels as f64;
        x.iter()
            .map(|&v| {
                let v = if v.is_nan() {
                    0.0
                } else {
                    f64::from(v).clamp(-clip, clip)
                };
                // f64 arithmetic: exact enough that `scaled` never leaves [0, L]
                // by more than rounding noise, which the clamp below absorbs.
                let scaled = ((v + clip) * inv_step).clamp(0.0, levels);
                let floor = scaled.floor();
                let frac = scaled - floor;
                // Round up with probability `frac`: E[q] = floor + frac = scaled.
                let up = uniform_f64(rng) < frac;
                (floor as u64 + u64::from(up)).min(self.levels) as u32
            })
            .collect()
    }

    /// Decode a single quantized vector (the `n = 1` case of [`Self::dequantize_sum`]).
    pub fn dequantize(&self, q: &[u32]) -> Result<Vec<f32>, Error> {
        self.dequantize_sum(q, 1)
    }

    /// Decode the element-wise sum (mod 2^b) of `n_summands` quantized
    /// vectors into the sum of the (clipped) float vectors.
    ///
    /// Fails if `n_summands > max_summands` or if an element is larger than
    /// `n_summands * L`, which can only happen if the aggregate is corrupt.
    pub fn dequantize_sum(&self, s: &[u32], n_summands: u32) -> Result<Vec<f32>, Error> {
        if n_summands > self.max_summands {
            return Err(Error::TooManySummands {
                n: n_summands,
                max: self.max_summands,
            });
        }
        let max = u64::from(n_summands) * self.levels;
        let offset = f64::from(n_summands) * f64::from(self.clip);
        s.iter()
            .enumerate()
            .map(|(index, &value)| {
                if u64::from(value) > max {
                    return Err(Error::SumOutOfRange { index, value, max });
                }
                Ok((f64::from(value) * self.step - offset) as f32)
            })
            .collect()
    }

    /// Worst-case absolute error per coordinate of `dequantize_sum` for a sum
    /// of `n` vectors whose inputs were already inside `[-clip, clip]`.
    ///
    /// Each stochastic rounding moves a value by less than one step, so the
    /// decoded sum differs from the float sum by less than `n * step`. The
    /// final conversion to `f32` adds at most half an ULP of the result,
    /// bounded here by `n * clip * 2^-23`. Clipping error (inputs outside the
    /// range) is not included: that is a deliberate bias chosen by the caller.
    pub fn error_bound(&self, n: u32) -> f64 {
        let n = f64::from(n);
        n * self.step + n * f64::from(self.clip) * f64::from(f32::EPSILON)
    }
}

/// Uniform f64 in [0, 1) from the top 53 bits of a u64.
fn uniform_f64<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Quantizer::new(0.0, 32, 1), Err(Error::InvalidClip(0.0)));
        assert!(matches!(
            Quantizer::new(f32::NAN, 32, 1),
            Err(Error::InvalidClip(_))
        ));
        assert_eq!(Quantizer::new(1.0, 0, 1), Err(Error::InvalidBits(0)));
        assert_eq!(Quantizer::new(1.0, 33, 1), Err(Error::InvalidBits(33)));
        assert_eq!(Quantizer::new(1.0, 32, 0), Err(Error::InvalidSummands(0)));
        assert_eq!(
            Quantizer::new(1.0, 3, 8),
            Err(Error::ModulusTooSmall {
                bits: 3,
                max_summands: 8
            })
        );
    }

    #[test]
    fn max_sum_does_not_wrap() {
        for bits in [8, 16, 20, 31, 32] {
            let q = Quantizer::new(1.0, bits, 10).unwrap();
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let top = q.quantize(&[1.0, 5.0], &mut rng);
            assert_eq!(top, vec![q.levels() as u32; 2]);
            let sum = (q.levels() * 10) as u32;
            assert!(u64::from(sum) <= u64::from(q.modulus_mask()));
            let dec = q.dequantize_sum(&[sum], 10).unwrap();
            assert!(
                (dec[0] - 10.0).abs() <= 1e-5 * 10.0,
                "bits={bits}: {}",
                dec[0]
            );
            let bottom = q.quantize(&[-1.0, -7.0, f32::NEG_INFINITY], &mut rng);
            assert_eq!(bottom, vec![0; 3]);
        }
    }

    #[test]
    fn nan_encodes_as_zero_and_corrupt_sums_are_rejected() {
        let q = Quantizer::new(2.0, 16, 4).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let enc = q.quantize(&[f32::NAN], &mut rng);
        assert!(q.dequantize(&enc).unwrap()[0].abs() <= q.step() as f32);
        assert!(matches!(
            q.dequantize_sum(&[u32::MAX], 4),
            Err(Error::SumOutOfRange { .. })
        ));
        assert!(matches!(
            q.dequantize_sum(&[0], 5),
            Err(Error::TooManySummands { n: 5, max: 4 })
        ));
    }

    #[test]
    fn stochastic_rounding_is_unbiased() {
        // 2-bit codes: levels {-1, -1/3, 1/3, 1}; 0.3 rounds to 1/3 w.p. 0.95
        // and to -1/3 w.p. 0.05, so a biased rounder would be far off 0.3.
        let q = Quantizer::new(1.0, 2, 1).unwrap();
        assert_eq!(q.levels(), 3);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let trials = 200_000;
        let x = vec![0.3f32; trials];
        let enc = q.quantize(&x, &mut rng);
        let mean: f64 = q
            .dequantize(&enc)
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / trials as f64;
        // One sample deviates from its mean by at most one step (2/3), so its
        // std is <= 1/3; allow 6 sigma of the sample mean.
        let tol = 6.0 * (1.0 / 3.0) / (trials as f64).sqrt();
        assert!((mean - 0.3).abs() < tol, "mean {mean} vs 0.3 (tol {tol})");
    }

    fn params() -> impl Strategy<Value = (f32, u32, u32)> {
        (0.01f32..100.0, 8u32..=32, 1u32..=64).prop_filter("modulus large enough", |&(_, b, n)| {
            ((1u64 << b) - 1) / u64::from(n) >= 1
        })
    }

    proptest! {
        #[test]
        fn round_trip_error_below_one_step(
            (clip, bits, n) in params(),
            frac in prop::collection::vec(-1.0f32..=1.0, 1..64),
            seed in any::<u64>(),
        ) {
            let q = Quantizer::new(clip, bits, n).unwrap();
            let x: Vec<f32> = frac.iter().map(|f| f * clip).collect();
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let enc = q.quantize(&x, &mut rng);
            prop_assert!(enc.iter().all(|&e| u64::from(e) <= q.levels()));
            let dec = q.dequantize(&enc).unwrap();
            for (a, b) in x.iter().zip(&dec) {
                prop_assert!(f64::from((a - b).abs()) <= q.error_bound(1), "{a} vs {b}, step {}", q.step());
            }
        }

        #[test]
        fn sum_of_quantized_decodes_to_float_sum(
            (clip, bits, max_n) in params(),
            dim in 1usize..16,
            n_frac in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let q = Quantizer::new(clip, bits, max_n).unwrap();
            let n = 1 + ((max_n - 1) as f64 * n_frac) as u32;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut float_sum = vec![0f64; dim];
            let mut enc_sum = vec![0u32; dim];
            for _ in 0..n {
                let x: Vec<f32> = (0..dim)
                    .map(|_| (uniform_f64(&mut rng) * 2.0 - 1.0) as f32 * clip)
                    .collect();
                for (s, &v) in float_sum.iter_mut().zip(&x) { *s += f64::from(v); }
                // Summation happens in the ring mod 2^bits, exactly as SecAgg does it.
                for (s, e) in enc_sum.iter_mut().zip(q.quantize(&x, &mut rng)) {
                    *s = s.wrapping_add(e) & q.modulus_mask();
                }
            }
            let dec = q.dequantize_sum(&enc_sum, n).unwrap();
            for (a, b) in float_sum.iter().zip(&dec) {
                prop_assert!((a - f64::from(*b)).abs() <= q.error_bound(n), "{a} vs {b}, n={n}");
            }
        }
    }
}
