//! Client side of the protocol: one `Client` per client per round.
//!
//! The client enforces the stage order itself and refuses anything that
//! could leak its input: notably it answers at most one unmasking request,
//! and never reveals both secrets of the same neighbour.

use crate::error::{Error, Result, SecretKind};
use crate::graph::NeighbourGraph;
use crate::keys::{agree, pairwise_mask_seed, public_bytes, self_mask_seed, share_encryption_key};
use crate::masking::{apply_masks, reduce, MaskOp, MaskTerm};
use crate::messages::*;
use crate::shamir::{self, scalar_from_bytes};
use crate::stage::Stage;
use crate::ClientId;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use std::collections::{BTreeMap, BTreeSet};
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

/// Shares this client holds for one neighbour.
struct HeldShares {
    mask_key: Scalar,
    self_seed: Scalar,
}

pub struct Client {
    config: RoundConfig,
    id: ClientId,
    graph: NeighbourGraph,
    stage: Stage,
    enc_sk: StaticSecret,
    /// Pairwise-mask secret key as a scalar (what gets secret-shared) ...
    mask_sk_scalar: Scalar,
    /// ... and as the X25519 secret built from its canonical bytes.
    mask_sk: StaticSecret,
    /// Self-mask seed b_u as a scalar; the PRG seed is derived from its bytes.
    self_seed: Scalar,
    rng: rand_chacha::ChaCha20Rng,
    /// Public keys of neighbours that advertised (U1 ∩ N(u)).
    neighbour_keys: BTreeMap<ClientId, NeighbourKeys>,
    /// Shares received from neighbours that shared keys (U2 ∩ N(u)).
    held: BTreeMap<ClientId, HeldShares>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.mask_sk_scalar.zeroize();
        self.self_seed.zeroize();
        for h in self.held.values_mut() {
            h.mask_key.zeroize();
            h.self_seed.zeroize();
        }
    }
}

/// AEAD associated data: binds protocol, round and direction.
fn share_ad(ctx: &RoundContext, sender: ClientId, recipient: ClientId) -> Vec<u8> {
    [
        b"FL-SecFlow share v1".as_slice(),
        &ctx.binding(),
        &sender.to_le_bytes(),
        &recipient.to_le_bytes(),
    ]
    .concat()
}

const NONCE: [u8; 12] = [0u8; 12];

impl Client {
    /// Create the client `id` for a round, generating fresh per-round secrets.
    pub fn new<R: RngCore + CryptoRng>(
        config: RoundConfig,
        id: ClientId,
        rng: &mut R,
    ) -> Result<Self> {
        config.validate()?;
        let graph = NeighbourGraph::new(&config.cohort, config.neighbours, &config.graph_seed)?;
        if !graph.contains(id) {
            return Err(Error::UnknownClient(id));
        }
        let mask_sk_scalar = Scalar::random(rng);
        let self_seed = Scalar::random(rng);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ok(Self {
            enc_sk: StaticSecret::random_from_rng(&mut *rng),
            mask_sk: StaticSecret::from(mask_sk_scalar.to_bytes()),
            mask_sk_scalar,
            self_seed,
            // Internal CSPRNG for sharing polynomials, seeded from the caller's.
            rng: <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(seed),
            config,
            id,
            graph,
            stage: Stage::AdvertiseKeys,
            neighbour_keys: BTreeMap::new(),
            held: BTreeMap::new(),
        })
    }

    pub fn id(&self) -> ClientId {
        self.id
    }

    pub fn config(&self) -> &RoundConfig {
        &self.config
    }

    fn expect_stage(&self, stage: Stage, operation: &'static str) -> Result<()> {
        if self.stage == stage {
            Ok(())
        } else {
            Err(Error::WrongStage {
                operation,
                stage: self.stage.name(),
            })
        }
    }

    fn expect_recipient(&self, recipient: ClientId) -> Result<()> {
        if recipient == self.id {
            Ok(())
        } else {
            Err(Error::WrongRecipient {
                expected: self.id,
                got: recipient,
            })
        }
    }

    /// Stage 0: publish the two public keys.
    pub fn advertise_keys(&mut self) -> Result<AdvertiseKeys> {
        self.expect_stage(Stage::AdvertiseKeys, "advertise_keys")?;
        self.stage = Stage::ShareKeys;
        Ok(AdvertiseKeys {
            ctx: self.config.ctx.clone(),
            client: self.id,
            enc_pk: public_bytes(&self.enc_sk),
            mask_pk: public_bytes(&self.mask_sk),
        })
    }

    /// Stage 1: secret-share the mask key and self-mask seed among the
    /// neighbours that advertised keys, encrypting each pair of shares.
    pub fn share_keys(&mut self, msg: &KeysBroadcast) -> Result<ShareKeys> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::ShareKeys, "share_keys")?;
        self.expect_recipient(msg.recipient)?;
        let mut keys = BTreeMap::new();
        for nk in &msg.neighbours {
            if !self.graph.are_neighbours(self.id, nk.client) {
                return Err(Error::NotANeighbour {
                    client: nk.client,
                    of: self.id,
                });
            }
            if keys.insert(nk.client, nk.clone()).is_some() {
                return Err(Error::Duplicate(nk.client));
            }
        }
        let t = self.config.threshold as usize;
        if keys.len() < t {
            return Err(Error::TooFew {
                what: format!("live neighbours of client {}", self.id),
                have: keys.len(),
                need: t,
            });
        }
        let holders: Vec<ClientId> = keys.keys().copied().collect();
        let (mk_commit, mk_shares) =
            shamir::split(&self.mask_sk_scalar, t, &holders, &mut self.rng)?;
        let (ss_commit, ss_shares) = shamir::split(&self.self_seed, t, &holders, &mut self.rng)?;
        let mut shares = Vec::with_capacity(holders.len());
        for ((v, mk), (_, ss)) in mk_shares.into_iter().zip(ss_shares) {
            let shared = agree(&self.enc_sk, &keys[&v].enc_pk, v)?;
            let key = share_encryption_key(&shared, &self.config.ctx, self.id, v);
            let mut plaintext = [mk.to_bytes(), ss.to_bytes()].concat();
            let ciphertext = ChaCha20Poly1305::new(&key.into())
                .encrypt(
                    &NONCE.into(),
                    Payload {
                        msg: &plaintext,
                        aad: &share_ad(&self.config.ctx, self.id, v),
                    },
                )
                .expect("ChaCha20-Poly1305 encryption of a 64-byte message cannot fail");
            plaintext.zeroize();
            shares.push(EncryptedShare {
                recipient: v,
                ciphertext,
            });
        }
        self.neighbour_keys = keys;
        self.stage = Stage::MaskedInput;
        Ok(ShareKeys {
            ctx: self.config.ctx.clone(),
            sender: self.id,
            commitments: ShareCommitments::new(&mk_commit, &ss_commit),
            shares,
        })
    }

    /// Decrypt and verify the shares forwarded by the server.
    fn receive_shares(&mut self, msg: &ShareBundle) -> Result<()> {
        let t = self.config.threshold as usize;
        let mut held = BTreeMap::new();
        for fs in &msg.shares {
            let v = fs.sender;
            let nk = self.neighbour_keys.get(&v).ok_or(Error::NotANeighbour {
                client: v,
                of: self.id,
            })?;
            if held.contains_key(&v) {
                return Err(Error::Duplicate(v));
            }
            let shared = agree(&self.enc_sk, &nk.enc_pk, v)?;
            let key = share_encryption_key(&shared, &self.config.ctx, v, self.id);
            let mut plaintext = ChaCha20Poly1305::new(&key.into())
                .decrypt(
                    &NONCE.into(),
                    Payload {
                        msg: &fs.ciphertext,
                        aad: &share_ad(&self.config.ctx, v, self.id),
                    },
                )
                .map_err(|_| Error::ShareAuthentication {
                    sender: v,
                    recipient: self.id,
                })?;
            let parsed = (plaintext.len() == 64)
                .then(|| {
                    let mk = scalar_from_bytes(plaintext[..32].try_into().unwrap())?;
                    let ss = scalar_from_bytes(plaintext[32..].try_into().unwrap())?;
                    Some((mk, ss))
                })
                .flatten();
            plaintext.zeroize();
            let (mask_key, self_seed) = parsed.ok_or_else(|| Error::Malformed {
                client: v,
                what: "encrypted share",
                detail: "plaintext is not two canonical scalars".into(),
            })?;
            let (mk_commit, ss_commit) = fs.commitments.parse(v, t)?;
            if !mk_commit.verify(self.id, &mask_key) {
                return Err(Error::InvalidShare {
                    owner: v,
                    holder: self.id,
                    kind: SecretKind::MaskKey,
                });
            }
            if !ss_commit.verify(self.id, &self_seed) {
                return Err(Error::InvalidShare {
                    owner: v,
                    holder: self.id,
                    kind: SecretKind::SelfMaskSeed,
                });
            }
            held.insert(
                v,
                HeldShares {
                    mask_key,
                    self_seed,
                },
            );
        }
        if held.len() < t {
            return Err(Error::TooFew {
                what: format!("neighbours of client {} that shared keys", self.id),
                have: held.len(),
                need: t,
            });
        }
        self.held = held;
        Ok(())
    }

    /// Stage 2: verify received shares and mask `input` (elements < 2^bits):
    /// `y = x + PRG(b_u) + Σ_{v in U2∩N(u), u<v} PRG(s_uv) - Σ_{v in U2∩N(u), u>v} PRG(s_uv)  mod 2^bits`.
    pub fn masked_input(&mut self, msg: &ShareBundle, input: &[u32]) -> Result<MaskedInput> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::MaskedInput, "masked_input")?;
        self.expect_recipient(msg.recipient)?;
        let len = self.config.vector_len as usize;
        if input.len() != len {
            return Err(Error::LengthMismatch {
                expected: len,
                got: input.len(),
            });
        }
        let bits = self.config.bits;
        let m = crate::masking::modulus_mask(bits);
        if let Some((index, &value)) = input.iter().enumerate().find(|(_, &x)| x & !m != 0) {
            return Err(Error::InputOutOfRange { index, value, bits });
        }
        self.receive_shares(msg)?;
        let ctx = &self.config.ctx;
        let mut terms = vec![MaskTerm {
            seed: self_mask_seed(&self.self_seed.to_bytes(), ctx, self.id),
            op: MaskOp::Add,
        }];
        for &v in self.held.keys() {
            let shared = agree(&self.mask_sk, &self.neighbour_keys[&v].mask_pk, v)?;
            // Lower id adds, higher id subtracts: the pair cancels in the sum.
            let op = if self.id < v {
                MaskOp::Add
            } else {
                MaskOp::Sub
            };
            terms.push(MaskTerm {
                seed: pairwise_mask_seed(&shared, ctx, self.id, v),
                op,
            });
        }
        let mut masked = input.to_vec();
        apply_masks(&mut masked, &terms);
        reduce(&mut masked, bits);
        terms.iter_mut().for_each(|t| t.seed.zeroize());
        self.stage = Stage::Unmask;
        Ok(MaskedInput {
            ctx: ctx.clone(),
            sender: self.id,
            masked,
        })
    }

    /// Stage 3: reveal the requested shares. Refuses (and stays unanswered)
    /// if any neighbour appears in both lists, if a listed client is not a
    /// neighbour whose shares we hold, or if this is not the first request.
    pub fn unmask(&mut self, msg: &UnmaskRequest) -> Result<UnmaskResponse> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::Unmask, "unmask")?;
        self.expect_recipient(msg.recipient)?;
        let survivors: BTreeSet<ClientId> = msg.reveal_self_seed.iter().copied().collect();
        let dropped: BTreeSet<ClientId> = msg.reveal_mask_key.iter().copied().collect();
        if survivors.len() != msg.reveal_self_seed.len()
            || dropped.len() != msg.reveal_mask_key.len()
        {
            return Err(Error::Malformed {
                client: self.id,
                what: "unmask request",
                detail: "duplicate client ids".into(),
            });
        }
        if let Some(&both) = survivors.intersection(&dropped).next() {
            return Err(Error::ConflictingSecretRequest(both));
        }
        let reveal = |ids: &BTreeSet<ClientId>, kind: SecretKind| -> Result<Vec<RevealedShare>> {
            ids.iter()
                .map(|&v| {
                    let h = self.held.get(&v).ok_or(Error::NotANeighbour {
                        client: v,
                        of: self.id,
                    })?;
                    let s = match kind {
                        SecretKind::SelfMaskSeed => &h.self_seed,
                        SecretKind::MaskKey => &h.mask_key,
                    };
                    Ok(RevealedShare {
                        owner: v,
                        share: s.to_bytes(),
                    })
                })
                .collect()
        };
        let self_seed_shares = reveal(&survivors, SecretKind::SelfMaskSeed)?;
        let mask_key_shares = reveal(&dropped, SecretKind::MaskKey)?;
        self.stage = Stage::Done;
        Ok(UnmaskResponse {
            ctx: self.config.ctx.clone(),
            sender: self.id,
            self_seed_shares,
            mask_key_shares,
        })
    }
}
