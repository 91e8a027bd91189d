//! Low-level primitives, exposed for test vectors and cross-checks.

use crate::{invalid_arg, seed32, to_napi};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use secagg::shamir;

/// First `len` words of the PRG mask for `seed` (32 bytes; AES-256-CTR).
#[napi]
pub fn expand_mask(seed: Buffer, len: u32) -> Result<Uint32Array> {
    Ok(Uint32Array::new(secagg::expand_mask(
        &seed32(&seed, "seed")?,
        len as usize,
    )))
}

#[napi(object)]
pub struct MaskTerm {
    /// 32-byte PRG seed.
    pub seed: Buffer,
    /// "add" or "sub": what to do with the mask.
    #[napi(ts_type = "'add' | 'sub'")]
    pub op: String,
}

pub struct UnmaskTask {
    sum: Vec<u32>,
    terms: Vec<secagg::MaskTerm>,
    bits: u32,
}

impl Task for UnmaskTask {
    type Output = Vec<u32>;
    type JsValue = Uint32Array;

    fn compute(&mut self) -> Result<Vec<u32>> {
        let mut sum = std::mem::take(&mut self.sum);
        secagg::unmask_aggregate(&mut sum, &self.terms, self.bits);
        Ok(sum)
    }

    fn resolve(&mut self, _env: Env, output: Vec<u32>) -> Result<Uint32Array> {
        Ok(Uint32Array::new(output))
    }
}

/// Apply PRG masks to a copy of `sum` and reduce mod 2^bits, off the main
/// thread (the primitive behind the server's final step).
#[napi(ts_return_type = "Promise<Uint32Array>")]
pub fn unmask_aggregate(
    sum: Uint32Array,
    terms: Vec<MaskTerm>,
    bits: u32,
) -> Result<AsyncTask<UnmaskTask>> {
    if !(1..=32).contains(&bits) {
        return Err(invalid_arg(format!("bits must be in 1..=32, got {bits}")));
    }
    let terms = terms
        .iter()
        .map(|t| {
            let op = match t.op.as_str() {
                "add" => secagg::MaskOp::Add,
                "sub" => secagg::MaskOp::Sub,
                other => {
                    return Err(invalid_arg(format!(
                        "mask op must be \"add\" or \"sub\", got {other:?}"
                    )))
                }
            };
            Ok(secagg::MaskTerm {
                seed: seed32(&t.seed, "mask seed")?,
                op,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(AsyncTask::new(UnmaskTask {
        sum: sum.to_vec(),
        terms,
        bits,
    }))
}

#[napi(object)]
pub struct ShamirShare {
    /// Holder id; the share is f(holder + 1).
    pub holder: u32,
    /// 32-byte canonical scalar.
    pub share: Buffer,
}

#[napi(object)]
pub struct ShamirSharing {
    /// Feldman commitments (compressed Ristretto points), `threshold` of them.
    pub commitments: Vec<Buffer>,
    pub shares: Vec<ShamirShare>,
}

fn scalar(buf: &[u8], what: &str) -> Result<shamir::Scalar> {
    shamir::scalar_from_bytes(&seed32(buf, what)?)
        .ok_or_else(|| invalid_arg(format!("{what} is not a canonical Ristretto255 scalar (little-endian, below the group order l ~ 2^252)")))
}

/// Deterministic verifiable Shamir split of a 32-byte secret (canonical
/// Ristretto255 scalar) among holders 0..n-1; `seed` (32 bytes) drives the
/// random polynomial so the output is a reproducible test vector.
#[napi]
pub fn shamir_split(secret: Buffer, threshold: u32, n: u32, seed: Buffer) -> Result<ShamirSharing> {
    let s = scalar(&secret, "secret")?;
    let mut rng = ChaCha20Rng::from_seed(seed32(&seed, "seed")?);
    let holders: Vec<u32> = (0..n).collect();
    let (c, shares) = shamir::split(&s, threshold as usize, &holders, &mut rng).map_err(to_napi)?;
    Ok(ShamirSharing {
        commitments: c
            .to_bytes()
            .into_iter()
            .map(|b| b.to_vec().into())
            .collect(),
        shares: shares
            .into_iter()
            .map(|(holder, y)| ShamirShare {
                holder,
                share: y.to_bytes().to_vec().into(),
            })
            .collect(),
    })
}

/// Reconstruct the secret from at least `commitments.length` shares.
/// Throws `[InvalidShare] ...` naming the holder if any share is wrong.
#[napi]
pub fn shamir_reconstruct(commitments: Vec<Buffer>, shares: Vec<ShamirShare>) -> Result<Buffer> {
    let raw = commitments
        .iter()
        .map(|b| seed32(b, "commitment"))
        .collect::<Result<Vec<_>>>()?;
    let c = shamir::Commitments::from_bytes(&raw, 0).map_err(to_napi)?;
    let shares = shares
        .iter()
        .map(|s| Ok((s.holder, scalar(&s.share, "share")?)))
        .collect::<Result<Vec<_>>>()?;
    let secret =
        shamir::reconstruct(&c, &shares, 0, secagg::SecretKind::MaskKey).map_err(to_napi)?;
    Ok(secret.to_bytes().to_vec().into())
}
