//! Wire messages of the four protocol stages, plus the round configuration.
//!
//! All messages are plain serde structs encoded as MessagePack maps with
//! named fields (`rmp_serde::to_vec_named`), so the TypeScript side can read
//! them with `msgpackr` as ordinary objects. Byte strings (keys, shares,
//! ciphertexts, masked vectors) are MessagePack `bin`, which msgpackr
//! returns as `Buffer`/`Uint8Array`. Vectors of u32 are little-endian bytes.
//!
//! Every message carries its [`RoundContext`]; receivers reject a context
//! that is not the current one, and the context is also bound into every
//! derived key and AEAD associated data, so editing the context field of a
//! replayed message does not help either.

use crate::error::{Error, Result};
use crate::ClientId;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Which aggregation this message belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundContext {
    pub experiment_id: String,
    pub round: u64,
}

impl RoundContext {
    /// Canonical, unambiguous byte encoding used in KDF info and AEAD AD.
    pub fn binding(&self) -> Vec<u8> {
        let id = self.experiment_id.as_bytes();
        let mut out = Vec::with_capacity(16 + id.len());
        out.extend_from_slice(&(id.len() as u64).to_le_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&self.round.to_le_bytes());
        out
    }

    /// Error unless `other` is this context.
    pub fn expect(&self, other: &RoundContext) -> Result<()> {
        if self == other {
            Ok(())
        } else {
            Err(Error::WrongRound {
                expected_experiment: self.experiment_id.clone(),
                expected_round: self.round,
                got_experiment: other.experiment_id.clone(),
                got_round: other.round,
            })
        }
    }
}

/// Parameters every participant of a round must agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundConfig {
    pub ctx: RoundContext,
    /// All client ids selected for the round (before any dropout).
    pub cohort: Vec<ClientId>,
    /// Neighbours per client (even; >= cohort size - 1 means full SecAgg).
    pub neighbours: u32,
    /// Shares needed to reconstruct a client's secret (1 <= t <= neighbours).
    pub threshold: u32,
    /// Aggregation modulus is 2^bits (1..=32).
    pub bits: u32,
    /// Number of u32 elements in each input vector.
    pub vector_len: u32,
    /// Seed of the neighbour graph.
    #[serde(with = "serde_bytes")]
    pub graph_seed: [u8; 32],
}

impl RoundConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=32).contains(&self.bits) {
            return Err(Error::InvalidParameters(format!(
                "bits must be in 1..=32, got {}",
                self.bits
            )));
        }
        if self.threshold == 0 {
            return Err(Error::InvalidParameters("threshold must be >= 1".into()));
        }
        let max_degree = self
            .neighbours
            .min(self.cohort.len().saturating_sub(1) as u32);
        if self.threshold > max_degree {
            return Err(Error::InvalidParameters(format!(
                "threshold {} exceeds the number of neighbours per client ({max_degree})",
                self.threshold
            )));
        }
        Ok(())
    }
}

/// Stage 0, client -> server: the client's two fresh public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdvertiseKeys {
    pub ctx: RoundContext,
    pub client: ClientId,
    /// X25519 key for encrypting shares (c_u^PK).
    #[serde(with = "serde_bytes")]
    pub enc_pk: [u8; 32],
    /// X25519 key for pairwise masks (s_u^PK).
    #[serde(with = "serde_bytes")]
    pub mask_pk: [u8; 32],
}

/// Public keys of one neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeighbourKeys {
    pub client: ClientId,
    #[serde(with = "serde_bytes")]
    pub enc_pk: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub mask_pk: [u8; 32],
}

/// Stage 0 result, server -> client: keys of its neighbours that advertised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeysBroadcast {
    pub ctx: RoundContext,
    pub recipient: ClientId,
    pub neighbours: Vec<NeighbourKeys>,
}

/// One AEAD-encrypted pair of shares, readable only by `recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedShare {
    pub recipient: ClientId,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Feldman commitments of both of a client's shared secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareCommitments {
    pub mask_key: Vec<serde_bytes::ByteArray<32>>,
    pub self_seed: Vec<serde_bytes::ByteArray<32>>,
}

/// Stage 1, client -> server: encrypted shares for each neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareKeys {
    pub ctx: RoundContext,
    pub sender: ClientId,
    pub commitments: ShareCommitments,
    pub shares: Vec<EncryptedShare>,
}

/// A share forwarded by the server, with the dealer's commitments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedShare {
    pub sender: ClientId,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
    pub commitments: ShareCommitments,
}

/// Stage 1 result, server -> client: shares addressed to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareBundle {
    pub ctx: RoundContext,
    pub recipient: ClientId,
    pub shares: Vec<ForwardedShare>,
}

/// Stage 2, client -> server: the masked input vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaskedInput {
    pub ctx: RoundContext,
    pub sender: ClientId,
    #[serde(with = "u32_le_bytes")]
    pub masked: Vec<u32>,
}

/// Stage 2 result, server -> client: which secrets to reveal shares of.
/// The two lists must be disjoint; clients refuse otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmaskRequest {
    pub ctx: RoundContext,
    pub recipient: ClientId,
    /// Neighbours that survived: reveal shares of their self-mask seed.
    pub reveal_self_seed: Vec<ClientId>,
    /// Neighbours that dropped: reveal shares of their pairwise-mask key.
    pub reveal_mask_key: Vec<ClientId>,
}

/// A share revealed to the server in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevealedShare {
    pub owner: ClientId,
    #[serde(with = "serde_bytes")]
    pub share: [u8; 32],
}

/// Stage 3, client -> server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmaskResponse {
    pub ctx: RoundContext,
    pub sender: ClientId,
    pub self_seed_shares: Vec<RevealedShare>,
    pub mask_key_shares: Vec<RevealedShare>,
}

/// Encode any message as a MessagePack map.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(msg).map_err(|e| Error::Encode(e.to_string()))
}

/// Decode a MessagePack message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// Serialize `Vec<u32>` as one `bin` of little-endian words (4x smaller and
/// far faster to parse than a MessagePack array of integers).
mod u32_le_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|w| w.to_le_bytes()).collect();
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(
                "u32 vector byte length is not a multiple of 4",
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }
}

impl ShareCommitments {
    pub fn new(
        mask_key: &crate::shamir::Commitments,
        self_seed: &crate::shamir::Commitments,
    ) -> Self {
        let conv = |c: &crate::shamir::Commitments| {
            c.to_bytes()
                .into_iter()
                .map(serde_bytes::ByteArray::new)
                .collect()
        };
        Self {
            mask_key: conv(mask_key),
            self_seed: conv(self_seed),
        }
    }

    /// Parse both commitment vectors, checking they match the threshold.
    pub fn parse(
        &self,
        owner: ClientId,
        threshold: usize,
    ) -> Result<(crate::shamir::Commitments, crate::shamir::Commitments)> {
        let parse_one = |v: &[serde_bytes::ByteArray<32>]| {
            if v.len() != threshold {
                return Err(Error::Malformed {
                    client: owner,
                    what: "share commitments",
                    detail: format!("expected {threshold} commitments, got {}", v.len()),
                });
            }
            let raw: Vec<[u8; 32]> = v.iter().map(|b| **b).collect();
            crate::shamir::Commitments::from_bytes(&raw, owner)
        };
        Ok((parse_one(&self.mask_key)?, parse_one(&self.self_seed)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_input_round_trips_as_compact_bin() {
        let msg = MaskedInput {
            ctx: RoundContext {
                experiment_id: "e".into(),
                round: 1,
            },
            sender: 4,
            masked: vec![1, u32::MAX, 0x01020304],
        };
        let bytes = encode(&msg).unwrap();
        // map keys are field names (camelCase) for msgpackr interop
        assert!(bytes.windows(6).any(|w| w == b"masked"));
        assert!(bytes
            .windows(12)
            .any(|w| w == [1, 0, 0, 0, 255, 255, 255, 255, 4, 3, 2, 1]));
        assert_eq!(decode::<MaskedInput>(&bytes).unwrap(), msg);
        assert!(matches!(
            decode::<MaskedInput>(&bytes[..bytes.len() - 1]),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn context_mismatch_is_a_clear_error() {
        let a = RoundContext {
            experiment_id: "exp".into(),
            round: 2,
        };
        let b = RoundContext {
            experiment_id: "exp".into(),
            round: 1,
        };
        let e = a.expect(&b).unwrap_err();
        assert!(
            e.to_string()
                .contains("round 1, expected experiment \"exp\" round 2"),
            "{e}"
        );
        assert_ne!(a.binding(), b.binding());
    }
}
