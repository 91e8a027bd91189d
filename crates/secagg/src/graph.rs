//! The SecAgg+ communication graph (Bell et al. 2020).
//!
//! Each client only exchanges keys and shares with its `k` neighbours,
//! which cuts client cost from O(n) to O(k) while keeping security for
//! k = O(log n). The graph is a Harary graph H(k, n) over a pseudo-random
//! permutation of the sorted cohort: place the clients on a ring in
//! permuted order and connect each to the k/2 nearest on either side. The
//! permutation is derived from a shared 32-byte round seed, so every client
//! and the server compute the same graph without extra messages. The seed
//! is part of the round configuration chosen by the director; against a
//! malicious director it should come from a public randomness beacon or a
//! commit-reveal among clients (out of scope here: semi-honest server).
//!
//! `k >= n - 1` gives the complete graph, i.e. the original SecAgg.

use crate::error::{Error, Result};
use crate::ClientId;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourGraph {
    neighbours: BTreeMap<ClientId, Vec<ClientId>>,
}

impl NeighbourGraph {
    /// Build the graph for `cohort` (any order, must be distinct ids).
    /// `k` must be even unless it is >= n - 1 (complete graph).
    pub fn new(cohort: &[ClientId], k: u32, seed: &[u8; 32]) -> Result<Self> {
        let mut ids = cohort.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != cohort.len() {
            return Err(Error::InvalidParameters(
                "cohort contains duplicate client ids".into(),
            ));
        }
        let n = ids.len();
        if n < 2 {
            return Err(Error::InvalidParameters(format!(
                "cohort needs at least 2 clients, got {n}"
            )));
        }
        let k = k as usize;
        let mut neighbours = BTreeMap::new();
        if k >= n - 1 {
            for &u in &ids {
                neighbours.insert(u, ids.iter().copied().filter(|&v| v != u).collect());
            }
            return Ok(Self { neighbours });
        }
        if k < 2 || !k.is_multiple_of(2) {
            return Err(Error::InvalidParameters(format!(
                "neighbour count k = {k} must be even and >= 2 (or >= n - 1 = {} for full SecAgg)",
                n - 1
            )));
        }
        let mut rng = ChaCha20Rng::from_seed(*seed);
        // Fisher-Yates with rejection sampling (no modulo bias).
        for i in (1..n).rev() {
            let j = uniform_below(&mut rng, i as u64 + 1) as usize;
            ids.swap(i, j);
        }
        for (p, &u) in ids.iter().enumerate() {
            let mut nb: Vec<ClientId> = (1..=k / 2)
                .flat_map(|d| [ids[(p + d) % n], ids[(p + n - d) % n]])
                .collect();
            nb.sort_unstable();
            nb.dedup();
            neighbours.insert(u, nb);
        }
        Ok(Self { neighbours })
    }

    /// Sorted neighbours of `u` (empty if `u` is not in the cohort).
    pub fn neighbours(&self, u: ClientId) -> &[ClientId] {
        self.neighbours.get(&u).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn contains(&self, u: ClientId) -> bool {
        self.neighbours.contains_key(&u)
    }

    pub fn are_neighbours(&self, u: ClientId, v: ClientId) -> bool {
        self.neighbours(u).binary_search(&v).is_ok()
    }

    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.neighbours.keys().copied()
    }
}

fn uniform_below(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let r = rng.next_u64();
        if r < zone {
            return r % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harary_graph_is_k_regular_symmetric_and_deterministic() {
        let cohort: Vec<ClientId> = (0..50).map(|i| i * 7 + 3).collect();
        let g = NeighbourGraph::new(&cohort, 6, &[1; 32]).unwrap();
        for &u in &cohort {
            assert_eq!(g.neighbours(u).len(), 6);
            assert!(!g.are_neighbours(u, u));
            for &v in g.neighbours(u) {
                assert!(g.are_neighbours(v, u));
            }
        }
        let mut shuffled = cohort.clone();
        shuffled.reverse();
        assert_eq!(
            g,
            NeighbourGraph::new(&shuffled, 6, &[1; 32]).unwrap(),
            "order-independent"
        );
        assert_ne!(
            g,
            NeighbourGraph::new(&cohort, 6, &[2; 32]).unwrap(),
            "seed matters"
        );
    }

    #[test]
    fn complete_graph_and_parameter_checks() {
        let g = NeighbourGraph::new(&[5, 1, 9], 10, &[0; 32]).unwrap();
        assert_eq!(g.neighbours(1), &[5, 9]);
        assert!(NeighbourGraph::new(&[1, 2, 3, 4, 5], 3, &[0; 32]).is_err());
        assert!(NeighbourGraph::new(&[1, 1, 2], 2, &[0; 32]).is_err());
        assert!(NeighbourGraph::new(&[1], 2, &[0; 32]).is_err());
    }
}
