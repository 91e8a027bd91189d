//! Server (director) side of the protocol.
//!
//! Client sets, as in the paper: U1 advertised keys, U2 shared keys (⊆ U1),
//! U3 sent a masked input (⊆ U2), U4 answered the unmasking request.
//! Masked inputs are summed as they arrive, so memory is one vector.
//!
//! Invariant enforced by [`SecretLedger`]: for any client the server
//! requests shares of at most ONE of its secrets — the self-mask seed if
//! it survived (its input is in the sum) or the pairwise-mask key if it
//! dropped (its input is not). Getting both for a survivor would unmask its
//! individual input.

use crate::error::{Error, Result, SecretKind};
use crate::graph::NeighbourGraph;
use crate::keys::{agree, pairwise_mask_seed, self_mask_seed};
use crate::masking::{add_assign, modulus_mask, unmask_aggregate, MaskOp, MaskTerm};
use crate::messages::*;
use crate::shamir::{self, scalar_from_bytes, Commitments};
use crate::stage::Stage;
use crate::ClientId;
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use x25519_dalek::StaticSecret;

/// Records which secret the server has asked to reconstruct for each
/// client and refuses to ever record the other one.
#[derive(Debug, Default, Clone)]
pub struct SecretLedger {
    requested: BTreeMap<ClientId, SecretKind>,
}

impl SecretLedger {
    pub fn request(&mut self, owner: ClientId, kind: SecretKind) -> Result<()> {
        match self.requested.get(&owner) {
            Some(&k) if k != kind => Err(Error::ConflictingSecretRequest(owner)),
            _ => {
                self.requested.insert(owner, kind);
                Ok(())
            }
        }
    }

    pub fn kind_of(&self, owner: ClientId) -> Option<SecretKind> {
        self.requested.get(&owner).copied()
    }
}

/// Result of a completed aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateResult {
    /// Σ_{u in U3} x_u mod 2^bits.
    pub sum: Vec<u32>,
    /// The clients whose inputs are in the sum (U3), sorted.
    pub included: Vec<ClientId>,
    /// Clients that dropped after sharing keys (their masks were removed).
    pub dropped: Vec<ClientId>,
}

struct SharedKeys {
    mask_key: Commitments,
    self_seed: Commitments,
    msg: ShareKeys,
}

pub struct Server {
    config: RoundConfig,
    graph: NeighbourGraph,
    stage: Stage,
    advertised: BTreeMap<ClientId, AdvertiseKeys>,
    shared: BTreeMap<ClientId, SharedKeys>,
    masked_sum: Vec<u32>,
    u3: BTreeSet<ClientId>,
    requests: BTreeMap<ClientId, UnmaskRequest>,
    ledger: SecretLedger,
    /// Verified revealed shares: owner -> (holder, share).
    revealed: BTreeMap<ClientId, Vec<(ClientId, Scalar)>>,
    responded: BTreeSet<ClientId>,
}

impl Server {
    pub fn new(config: RoundConfig) -> Result<Self> {
        config.validate()?;
        let graph = NeighbourGraph::new(&config.cohort, config.neighbours, &config.graph_seed)?;
        Ok(Self {
            config,
            graph,
            stage: Stage::AdvertiseKeys,
            advertised: BTreeMap::new(),
            shared: BTreeMap::new(),
            masked_sum: Vec::new(),
            u3: BTreeSet::new(),
            requests: BTreeMap::new(),
            ledger: SecretLedger::default(),
            revealed: BTreeMap::new(),
            responded: BTreeSet::new(),
        })
    }

    pub fn config(&self) -> &RoundConfig {
        &self.config
    }

    pub fn graph(&self) -> &NeighbourGraph {
        &self.graph
    }

    /// The unmasking ledger (which secret was requested for which client).
    pub fn ledger(&self) -> &SecretLedger {
        &self.ledger
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

    /// Live neighbours of `u` within `set`.
    fn live_neighbours<'a>(
        &'a self,
        u: ClientId,
        set: &'a impl Fn(ClientId) -> bool,
    ) -> impl Iterator<Item = ClientId> + 'a {
        self.graph
            .neighbours(u)
            .iter()
            .copied()
            .filter(move |&v| set(v))
    }

    fn require_threshold(&self, u: ClientId, have: usize, what: &str) -> Result<()> {
        let need = self.config.threshold as usize;
        if have < need {
            return Err(Error::TooFew {
                what: format!("{what} of client {u}"),
                have,
                need,
            });
        }
        Ok(())
    }

    // ----- stage 0 -----

    pub fn receive_advertise(&mut self, msg: AdvertiseKeys) -> Result<()> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::AdvertiseKeys, "receive_advertise")?;
        if !self.graph.contains(msg.client) {
            return Err(Error::UnknownClient(msg.client));
        }
        if self.advertised.contains_key(&msg.client) {
            return Err(Error::Duplicate(msg.client));
        }
        self.advertised.insert(msg.client, msg);
        Ok(())
    }

    /// Close stage 0; returns one broadcast per client in U1. Fails if some
    /// client in U1 has fewer than `threshold` neighbours in U1.
    pub fn finish_advertise(&mut self) -> Result<Vec<KeysBroadcast>> {
        self.expect_stage(Stage::AdvertiseKeys, "finish_advertise")?;
        let in_u1 = |v: ClientId| self.advertised.contains_key(&v);
        let mut out = Vec::with_capacity(self.advertised.len());
        for &u in self.advertised.keys() {
            let neighbours: Vec<NeighbourKeys> = self
                .live_neighbours(u, &in_u1)
                .map(|v| {
                    let a = &self.advertised[&v];
                    NeighbourKeys {
                        client: v,
                        enc_pk: a.enc_pk,
                        mask_pk: a.mask_pk,
                    }
                })
                .collect();
            self.require_threshold(u, neighbours.len(), "neighbours that advertised keys")?;
            out.push(KeysBroadcast {
                ctx: self.config.ctx.clone(),
                recipient: u,
                neighbours,
            });
        }
        self.stage = Stage::ShareKeys;
        Ok(out)
    }

    // ----- stage 1 -----

    pub fn receive_share_keys(&mut self, msg: ShareKeys) -> Result<()> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::ShareKeys, "receive_share_keys")?;
        let u = msg.sender;
        if !self.advertised.contains_key(&u) {
            return Err(Error::UnknownClient(u));
        }
        if self.shared.contains_key(&u) {
            return Err(Error::Duplicate(u));
        }
        // Shares must go to exactly the neighbours announced in stage 0.
        let in_u1 = |v: ClientId| self.advertised.contains_key(&v);
        let expected: Vec<ClientId> = self.live_neighbours(u, &in_u1).collect();
        let mut got: Vec<ClientId> = msg.shares.iter().map(|s| s.recipient).collect();
        got.sort_unstable();
        if got != expected {
            return Err(Error::Malformed {
                client: u,
                what: "share-keys message",
                detail: format!("shares addressed to {got:?}, expected {expected:?}"),
            });
        }
        let (mask_key, self_seed) = msg.commitments.parse(u, self.config.threshold as usize)?;
        self.shared.insert(
            u,
            SharedKeys {
                mask_key,
                self_seed,
                msg,
            },
        );
        Ok(())
    }

    /// Close stage 1; returns one bundle of forwarded shares per client in U2.
    pub fn finish_share_keys(&mut self) -> Result<Vec<ShareBundle>> {
        self.expect_stage(Stage::ShareKeys, "finish_share_keys")?;
        let in_u2 = |v: ClientId| self.shared.contains_key(&v);
        let mut out = Vec::with_capacity(self.shared.len());
        for &u in self.shared.keys() {
            let mut shares = Vec::new();
            for v in self.live_neighbours(u, &in_u2) {
                let sk = &self.shared[&v];
                let enc = sk
                    .msg
                    .shares
                    .iter()
                    .find(|s| s.recipient == u)
                    .expect("checked on receipt");
                shares.push(ForwardedShare {
                    sender: v,
                    ciphertext: enc.ciphertext.clone(),
                    commitments: sk.msg.commitments.clone(),
                });
            }
            self.require_threshold(u, shares.len(), "neighbours that shared keys")?;
            out.push(ShareBundle {
                ctx: self.config.ctx.clone(),
                recipient: u,
                shares,
            });
        }
        self.masked_sum = vec![0; self.config.vector_len as usize];
        self.stage = Stage::MaskedInput;
        Ok(out)
    }

    // ----- stage 2 -----

    /// Add one masked input to the running sum.
    pub fn receive_masked_input(&mut self, msg: MaskedInput) -> Result<()> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::MaskedInput, "receive_masked_input")?;
        let u = msg.sender;
        if !self.shared.contains_key(&u) {
            return Err(Error::UnknownClient(u));
        }
        if self.u3.contains(&u) {
            return Err(Error::Duplicate(u));
        }
        if msg.masked.len() != self.masked_sum.len() {
            return Err(Error::LengthMismatch {
                expected: self.masked_sum.len(),
                got: msg.masked.len(),
            });
        }
        let m = modulus_mask(self.config.bits);
        if let Some((index, &value)) = msg.masked.iter().enumerate().find(|(_, &x)| x & !m != 0) {
            return Err(Error::InputOutOfRange {
                index,
                value,
                bits: self.config.bits,
            });
        }
        add_assign(&mut self.masked_sum, &msg.masked);
        self.u3.insert(u);
        Ok(())
    }

    /// Close stage 2; returns one unmasking request per client in U3.
    /// Late masked inputs are refused from here on: once the server asks
    /// for a dropped client's mask key, that client's input must never be
    /// accepted (its masks would be removable).
    pub fn finish_masked_input(&mut self) -> Result<Vec<UnmaskRequest>> {
        self.expect_stage(Stage::MaskedInput, "finish_masked_input")?;
        let t = self.config.threshold as usize;
        if self.u3.len() < t {
            return Err(Error::TooFew {
                what: "clients that sent masked inputs".into(),
                have: self.u3.len(),
                need: t,
            });
        }
        let u3 = self.u3.clone();
        let dropped: BTreeSet<ClientId> = self
            .shared
            .keys()
            .copied()
            .filter(|v| !u3.contains(v))
            .collect();
        // Check recoverability before asking anyone for anything.
        for &v in self.shared.keys() {
            let holders = self
                .graph
                .neighbours(v)
                .iter()
                .filter(|h| u3.contains(h))
                .count();
            // A dropped client none of whose neighbours survived left no mask
            // in the sum, so nothing of it needs recovering.
            if u3.contains(&v) || holders > 0 {
                self.require_threshold(v, holders, "surviving neighbours holding shares")?;
            }
        }
        let mut out = Vec::with_capacity(u3.len());
        for &u in &u3 {
            let mut reveal_self_seed = Vec::new();
            let mut reveal_mask_key = Vec::new();
            for &v in self.graph.neighbours(u) {
                if u3.contains(&v) {
                    self.ledger.request(v, SecretKind::SelfMaskSeed)?;
                    reveal_self_seed.push(v);
                } else if dropped.contains(&v) {
                    self.ledger.request(v, SecretKind::MaskKey)?;
                    reveal_mask_key.push(v);
                }
            }
            let req = UnmaskRequest {
                ctx: self.config.ctx.clone(),
                recipient: u,
                reveal_self_seed,
                reveal_mask_key,
            };
            self.requests.insert(u, req.clone());
            out.push(req);
        }
        self.stage = Stage::Unmask;
        Ok(out)
    }

    // ----- stage 3 -----

    /// Verify and store one client's revealed shares. A response with any
    /// share that fails verification is rejected as a whole (and the error
    /// names the culprit); the round can still finish if enough other
    /// neighbours respond.
    pub fn receive_unmask_response(&mut self, msg: UnmaskResponse) -> Result<()> {
        self.config.ctx.expect(&msg.ctx)?;
        self.expect_stage(Stage::Unmask, "receive_unmask_response")?;
        let h = msg.sender;
        let req = self.requests.get(&h).ok_or(Error::UnknownClient(h))?;
        if self.responded.contains(&h) {
            return Err(Error::Duplicate(h));
        }
        let owners = |shares: &[RevealedShare]| shares.iter().map(|s| s.owner).collect::<Vec<_>>();
        if owners(&msg.self_seed_shares) != req.reveal_self_seed
            || owners(&msg.mask_key_shares) != req.reveal_mask_key
        {
            return Err(Error::Malformed {
                client: h,
                what: "unmask response",
                detail: "revealed shares do not match the request".into(),
            });
        }
        let mut verified = Vec::new();
        for (shares, kind) in [
            (&msg.self_seed_shares, SecretKind::SelfMaskSeed),
            (&msg.mask_key_shares, SecretKind::MaskKey),
        ] {
            for s in shares {
                let sk = &self.shared[&s.owner];
                let commitments = match kind {
                    SecretKind::SelfMaskSeed => &sk.self_seed,
                    SecretKind::MaskKey => &sk.mask_key,
                };
                let y = scalar_from_bytes(&s.share)
                    .filter(|y| commitments.verify(h, y))
                    .ok_or(Error::InvalidShare {
                        owner: s.owner,
                        holder: h,
                        kind,
                    })?;
                verified.push((s.owner, y));
            }
        }
        for (owner, y) in verified {
            self.revealed.entry(owner).or_default().push((h, y));
        }
        self.responded.insert(h);
        Ok(())
    }

    /// The PRG masks to remove from the sum, from the shares received so far.
    ///
    /// The Shamir reconstructions (one per owner) and the X25519 agreements
    /// (one per surviving neighbour of each dropped owner) are independent,
    /// so they run in parallel with rayon; results are collected in owner /
    /// neighbour order and the first error in that order is returned, exactly
    /// as a sequential loop would. Every share in `revealed` was verified
    /// against the owner's commitments on receipt, so the reconstruction does
    /// not verify them again.
    fn removal_terms(&self) -> Result<(Vec<MaskTerm>, Vec<ClientId>)> {
        let owners: Vec<(ClientId, &Vec<(ClientId, Scalar)>)> =
            self.revealed.iter().map(|(&o, s)| (o, s)).collect();
        let per_owner: Vec<Result<(Vec<MaskTerm>, Option<ClientId>)>> = owners
            .par_iter()
            .map(|&(owner, shares)| self.owner_removal_terms(owner, shares))
            .collect();
        let mut terms = Vec::new();
        let mut dropped = Vec::new();
        for r in per_owner {
            let (t, d) = r?;
            terms.extend(t);
            dropped.extend(d);
        }
        Ok((terms, dropped))
    }

    /// The removal terms of one owner's reconstructed secret, and the owner
    /// if it dropped.
    fn owner_removal_terms(
        &self,
        owner: ClientId,
        shares: &[(ClientId, Scalar)],
    ) -> Result<(Vec<MaskTerm>, Option<ClientId>)> {
        let ctx = &self.config.ctx;
        let sk = &self.shared[&owner];
        match self.ledger.kind_of(owner) {
            Some(SecretKind::SelfMaskSeed) => {
                let b = shamir::reconstruct_verified(
                    &sk.self_seed,
                    shares,
                    owner,
                    SecretKind::SelfMaskSeed,
                )?;
                let term = MaskTerm {
                    seed: self_mask_seed(&b.to_bytes(), ctx, owner),
                    op: MaskOp::Sub,
                };
                Ok((vec![term], None))
            }
            Some(SecretKind::MaskKey) => {
                let s =
                    shamir::reconstruct_verified(&sk.mask_key, shares, owner, SecretKind::MaskKey)?;
                let mask_sk = StaticSecret::from(s.to_bytes());
                let survivors: Vec<ClientId> = self
                    .graph
                    .neighbours(owner)
                    .iter()
                    .copied()
                    .filter(|u| self.u3.contains(u))
                    .collect();
                let terms: Vec<Result<MaskTerm>> = survivors
                    .par_iter()
                    .map(|&u| {
                        let shared = agree(&mask_sk, &self.advertised[&u].mask_pk, u)?;
                        // Survivor u applied +mask if u < owner, -mask otherwise; undo it.
                        let applied = if u < owner { MaskOp::Add } else { MaskOp::Sub };
                        Ok(MaskTerm {
                            seed: pairwise_mask_seed(&shared, ctx, u, owner),
                            op: applied.inverse(),
                        })
                    })
                    .collect();
                let terms = terms.into_iter().collect::<Result<Vec<_>>>()?;
                Ok((terms, Some(owner)))
            }
            None => unreachable!("shares are only accepted for requested secrets"),
        }
    }

    /// Close the round: reconstruct the requested secrets and return the
    /// unmasked sum of U3's inputs. Fails (naming the client) if some secret
    /// has fewer than `threshold` verified shares.
    pub fn finish(&mut self) -> Result<AggregateResult> {
        self.expect_stage(Stage::Unmask, "finish")?;
        for (&owner, kind) in &self.ledger.requested {
            let have = self.revealed.get(&owner).map_or(0, Vec::len);
            let what = format!("valid shares of the {kind} of client {owner}");
            if have < self.config.threshold as usize {
                return Err(Error::TooFew {
                    what,
                    have,
                    need: self.config.threshold as usize,
                });
            }
        }
        let (terms, dropped) = self.removal_terms()?;
        let mut sum = std::mem::take(&mut self.masked_sum);
        unmask_aggregate(&mut sum, &terms, self.config.bits);
        self.stage = Stage::Done;
        Ok(AggregateResult {
            sum,
            included: self.u3.iter().copied().collect(),
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_refuses_both_secrets_of_one_client() {
        let mut l = SecretLedger::default();
        l.request(3, SecretKind::SelfMaskSeed).unwrap();
        l.request(3, SecretKind::SelfMaskSeed).unwrap();
        l.request(4, SecretKind::MaskKey).unwrap();
        assert_eq!(
            l.request(3, SecretKind::MaskKey),
            Err(Error::ConflictingSecretRequest(3))
        );
        assert_eq!(
            l.request(4, SecretKind::SelfMaskSeed),
            Err(Error::ConflictingSecretRequest(4))
        );
        assert_eq!(l.kind_of(3), Some(SecretKind::SelfMaskSeed));
    }
}
