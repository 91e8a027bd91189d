//! SecAgg+ secure aggregation of u32 vectors mod 2^b.
//!
//! Protocol: Bonawitz et al., "Practical Secure Aggregation for
//! Privacy-Preserving Machine Learning" (CCS 2017), with the sparse
//! neighbour graph of Bell et al., "Secure Single-Server Aggregation with
//! (Poly)Logarithmic Overhead" (CCS 2020). Full SecAgg is `neighbours >= n-1`.
//! Threat model implemented: semi-honest server, clients may drop out at any
//! stage; a wrong or corrupted share is detected and attributed (Feldman
//! VSS). The malicious-server consistency-check round is not implemented.
//!
//! Stages (client methods / server methods):
//! 0. advertise keys: [`Client::advertise_keys`] -> [`Server::receive_advertise`], [`Server::finish_advertise`]
//! 1. share keys: [`Client::share_keys`] -> [`Server::receive_share_keys`], [`Server::finish_share_keys`]
//! 2. masked input: [`Client::masked_input`] -> [`Server::receive_masked_input`], [`Server::finish_masked_input`]
//! 3. unmasking: [`Client::unmask`] -> [`Server::receive_unmask_response`], [`Server::finish`]
//!
//! All cryptographic primitives come from audited RustCrypto / dalek crates:
//! X25519 (`x25519-dalek`), HKDF-SHA256 (`hkdf`, `sha2`), ChaCha20-Poly1305
//! (`chacha20poly1305`), AES-256-CTR as PRG (`aes` + `ctr`), Ristretto255 scalars
//! and points for verifiable Shamir sharing (`curve25519-dalek`).

pub mod client;
pub mod error;
pub mod graph;
pub mod keys;
pub mod masking;
pub mod messages;
pub mod prg;
pub mod server;
pub mod shamir;
mod stage;

/// Client identifier, unique within a round's cohort.
pub type ClientId = u32;

pub use client::Client;
pub use error::{Error, Result, SecretKind};
pub use graph::NeighbourGraph;
pub use masking::{unmask_aggregate, MaskOp, MaskTerm};
pub use messages::*;
pub use prg::{expand_mask, Seed};
pub use server::{AggregateResult, Server};
