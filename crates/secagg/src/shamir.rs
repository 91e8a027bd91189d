//! Verifiable t-of-n secret sharing (Feldman VSS) over the Ristretto255
//! group's prime-order scalar field, using `curve25519-dalek`.
//!
//! Secrets are field elements (scalars mod the prime l ~ 2^252). Secrets
//! that must be bytes (the self-mask seed, the X25519 mask key) are generated
//! as random scalars and used via their canonical 32-byte encoding, so they
//! round-trip exactly through sharing (≈252 bits of entropy).
//!
//! Wrong-share detection: the dealer publishes commitments `C_i = a_i · G`
//! to the coefficients of its polynomial `f(x) = a_0 + a_1 x + … + a_{t-1} x^{t-1}`.
//! A share `(x, y)` is valid iff `y · G == Σ C_i · x^i`. Recipients check
//! their shares on receipt, and the server checks every revealed share
//! before using it, so a wrong share is rejected *and attributed to the
//! client that sent it* instead of silently corrupting the reconstruction.
//! (Commitments reveal `a_0 · G`; recovering `a_0` from it is the discrete
//! log problem, so secrecy is computational, which matches the rest of the
//! protocol.)
//!
//! Holder `id` gets the share at `x = id + 1` (never 0, which is the secret).

use crate::error::{Error, Result, SecretKind};
use crate::ClientId;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
pub use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use rand_core::{CryptoRng, RngCore};

/// Commitments to the sharing polynomial's coefficients (length = threshold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments(pub Vec<RistrettoPoint>);

impl Commitments {
    pub fn threshold(&self) -> usize {
        self.0.len()
    }

    pub fn to_bytes(&self) -> Vec<[u8; 32]> {
        self.0.iter().map(|p| p.compress().to_bytes()).collect()
    }

    /// Parse compressed points; `owner` is used for error attribution.
    pub fn from_bytes(bytes: &[[u8; 32]], owner: ClientId) -> Result<Self> {
        bytes
            .iter()
            .map(|b| {
                CompressedRistretto(*b)
                    .decompress()
                    .ok_or_else(|| Error::Malformed {
                        client: owner,
                        what: "share commitment",
                        detail: "not a valid Ristretto point".into(),
                    })
            })
            .collect::<Result<Vec<_>>>()
            .map(Commitments)
    }

    /// Whether `y` is the share of holder `holder` under these commitments.
    pub fn verify(&self, holder: ClientId, y: &Scalar) -> bool {
        let x = holder_x(holder);
        let mut powers = Vec::with_capacity(self.0.len());
        let mut p = Scalar::ONE;
        for _ in 0..self.0.len() {
            powers.push(p);
            p *= x;
        }
        let expected = RistrettoPoint::vartime_multiscalar_mul(&powers, &self.0);
        y * RISTRETTO_BASEPOINT_TABLE == expected
    }

    /// Whether `secret` is the committed secret (`C_0 = secret · G`).
    pub fn verify_secret(&self, secret: &Scalar) -> bool {
        self.0
            .first()
            .is_some_and(|c0| secret * RISTRETTO_BASEPOINT_TABLE == *c0)
    }
}

/// x-coordinate of a holder's share.
pub fn holder_x(holder: ClientId) -> Scalar {
    Scalar::from(u64::from(holder) + 1)
}

/// Parse a 32-byte share/secret; rejects non-canonical encodings (>= l).
pub fn scalar_from_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
    Option::from(Scalar::from_canonical_bytes(*bytes))
}

/// Split `secret` into shares for `holders` (distinct ids) so that any
/// `threshold` of them reconstruct it and fewer reveal nothing.
pub fn split<R: RngCore + CryptoRng>(
    secret: &Scalar,
    threshold: usize,
    holders: &[ClientId],
    rng: &mut R,
) -> Result<(Commitments, Vec<(ClientId, Scalar)>)> {
    if threshold == 0 || threshold > holders.len() {
        return Err(Error::InvalidParameters(format!(
            "threshold {threshold} must be in 1..={} (number of share holders)",
            holders.len()
        )));
    }
    let mut coeffs = Vec::with_capacity(threshold);
    coeffs.push(*secret);
    coeffs.extend((1..threshold).map(|_| Scalar::random(rng)));
    let commitments = Commitments(
        coeffs
            .iter()
            .map(|a| a * RISTRETTO_BASEPOINT_TABLE)
            .collect(),
    );
    let shares = holders
        .iter()
        .map(|&h| {
            let x = holder_x(h);
            // Horner evaluation of f(x).
            let y = coeffs.iter().rev().fold(Scalar::ZERO, |acc, a| acc * x + a);
            (h, y)
        })
        .collect();
    Ok((commitments, shares))
}

/// Reconstruct the secret from at least `commitments.threshold()` shares,
/// verifying every share first. Shares must come from distinct holders.
/// `owner`/`kind` only label errors.
pub fn reconstruct(
    commitments: &Commitments,
    shares: &[(ClientId, Scalar)],
    owner: ClientId,
    kind: SecretKind,
) -> Result<Scalar> {
    check_enough(commitments, shares, owner, kind)?;
    for (holder, y) in shares {
        if !commitments.verify(*holder, y) {
            return Err(Error::InvalidShare {
                owner,
                holder: *holder,
                kind,
            });
        }
    }
    reconstruct_verified(commitments, shares, owner, kind)
}

/// Fails with `TooFew` unless there are at least `threshold` shares; returns the threshold.
fn check_enough(
    commitments: &Commitments,
    shares: &[(ClientId, Scalar)],
    owner: ClientId,
    kind: SecretKind,
) -> Result<usize> {
    let t = commitments.threshold();
    if shares.len() < t {
        return Err(Error::TooFew {
            what: format!("valid shares of the {kind} of client {owner}"),
            have: shares.len(),
            need: t,
        });
    }
    Ok(t)
}

/// [`reconstruct`] for shares that the caller has already checked one by one
/// with `commitments.verify` against these same `commitments` (the server
/// verifies each revealed share on receipt): skips repeating those checks
/// (one multi-scalar multiplication each) but keeps every other check,
/// including that the result matches the commitment to the secret.
pub(crate) fn reconstruct_verified(
    commitments: &Commitments,
    shares: &[(ClientId, Scalar)],
    owner: ClientId,
    kind: SecretKind,
) -> Result<Scalar> {
    let t = check_enough(commitments, shares, owner, kind)?;
    let used = &shares[..t];
    let xs: Vec<Scalar> = used.iter().map(|(h, _)| holder_x(*h)).collect();
    let mut secret = Scalar::ZERO;
    for (i, (_, y)) in used.iter().enumerate() {
        // Lagrange basis at 0: prod_{j != i} x_j / (x_j - x_i).
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num *= xj;
                den *= xj - xs[i];
            }
        }
        if den == Scalar::ZERO {
            return Err(Error::Malformed {
                client: owner,
                what: "share set",
                detail: "duplicate holder".into(),
            });
        }
        secret += y * num * den.invert();
    }
    // Cannot fail once all shares verified, but it is cheap to be sure.
    if !commitments.verify_secret(&secret) {
        return Err(Error::InvalidShare {
            owner,
            holder: used[0].0,
            kind,
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn any_t_shares_reconstruct_and_fewer_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let secret = Scalar::random(&mut rng);
        let holders: Vec<ClientId> = vec![0, 3, 4, 8, 9, 17];
        let (c, shares) = split(&secret, 4, &holders, &mut rng).unwrap();
        for start in 0..3 {
            let subset = &shares[start..start + 4];
            assert_eq!(
                reconstruct(&c, subset, 1, SecretKind::MaskKey).unwrap(),
                secret
            );
        }
        let rev: Vec<_> = shares.iter().rev().cloned().collect();
        assert_eq!(
            reconstruct(&c, &rev, 1, SecretKind::MaskKey).unwrap(),
            secret
        );
        assert!(matches!(
            reconstruct(&c, &shares[..3], 1, SecretKind::MaskKey),
            Err(Error::TooFew {
                have: 3,
                need: 4,
                ..
            })
        ));
    }

    #[test]
    fn wrong_share_is_detected_and_attributed() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let secret = Scalar::random(&mut rng);
        let (c, mut shares) = split(&secret, 3, &[1, 2, 3, 4], &mut rng).unwrap();
        shares[1].1 += Scalar::ONE;
        assert_eq!(
            reconstruct(&c, &shares, 7, SecretKind::SelfMaskSeed),
            Err(Error::InvalidShare {
                owner: 7,
                holder: 2,
                kind: SecretKind::SelfMaskSeed
            })
        );
        // A correct value presented as another holder's share is also caught.
        let (c, shares) = split(&secret, 2, &[1, 2, 3], &mut rng).unwrap();
        let swapped = vec![(1, shares[1].1), (2, shares[0].1)];
        assert!(matches!(
            reconstruct(&c, &swapped, 7, SecretKind::MaskKey),
            Err(Error::InvalidShare { .. })
        ));
    }

    #[test]
    fn commitments_round_trip_and_reject_garbage() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let (c, _) = split(&Scalar::ONE, 2, &[0, 1], &mut rng).unwrap();
        assert_eq!(Commitments::from_bytes(&c.to_bytes(), 0).unwrap(), c);
        assert!(Commitments::from_bytes(&[[0xffu8; 32]], 5).is_err());
        assert!(split(&Scalar::ONE, 3, &[0, 1], &mut rng).is_err());
        assert!(split(&Scalar::ONE, 0, &[0, 1], &mut rng).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn split_reconstruct_round_trip(seed in any::<u64>(), n in 1usize..12, t_frac in 0.0f64..1.0) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let t = 1 + ((n - 1) as f64 * t_frac) as usize;
            let secret = Scalar::random(&mut rng);
            let holders: Vec<ClientId> = (0..n as u32).map(|i| i * 3 + 1).collect();
            let (c, shares) = split(&secret, t, &holders, &mut rng).unwrap();
            prop_assert!(shares.iter().all(|(h, y)| c.verify(*h, y)));
            prop_assert_eq!(reconstruct(&c, &shares[n - t..], 0, SecretKind::MaskKey).unwrap(), secret);
        }
    }
}
