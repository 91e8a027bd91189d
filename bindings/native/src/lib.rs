//! Node addon (napi-rs) exposing the fixed-point codec and the SecAgg+
//! client/server state machines to the TypeScript orchestrator.
//!
//! Conventions:
//! - protocol messages cross the boundary as MessagePack `Buffer`s
//!   (readable with msgpackr; see `secagg::messages`);
//! - vectors are `Uint32Array` / `Float32Array`;
//! - errors are thrown as JS `Error`s whose message starts with the
//!   `secagg::Error` variant in brackets, e.g. `[ShareAuthentication] share
//!   from client 3 to client 5 failed authentication ...`;
//! - work proportional to the model size that involves PRG expansion
//!   (masking, unmasking) runs on the libuv thread pool and returns a Promise.

#![deny(clippy::all)]

mod client;
mod quantizer;
mod server;
mod vectors;

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub(crate) fn to_napi(e: secagg::Error) -> Error {
    Error::new(Status::GenericFailure, format!("[{}] {e}", e.code()))
}

pub(crate) fn invalid_arg(msg: impl Into<String>) -> Error {
    Error::new(Status::InvalidArg, msg.into())
}

pub(crate) fn seed32(buf: &[u8], what: &str) -> Result<[u8; 32]> {
    buf.try_into().map_err(|_| {
        invalid_arg(format!(
            "{what} must be exactly 32 bytes, got {}",
            buf.len()
        ))
    })
}

/// Round parameters shared by the director and every envoy of a round.
#[napi(object)]
#[derive(Clone)]
pub struct RoundConfig {
    pub experiment_id: String,
    /// Non-negative integer round number.
    pub round: i64,
    /// All client ids selected for the round (before dropout).
    pub cohort: Vec<u32>,
    /// Neighbours per client: even, or >= cohort.length - 1 for full SecAgg.
    pub neighbours: u32,
    /// Shares needed to reconstruct a client's secrets (1..=neighbours).
    pub threshold: u32,
    /// Aggregation modulus 2^bits, 1..=32 (match the quantizer's bits).
    pub bits: u32,
    pub vector_len: u32,
    /// 32 bytes; determines the neighbour graph.
    pub graph_seed: Buffer,
}

impl RoundConfig {
    pub(crate) fn to_rust(&self) -> Result<secagg::RoundConfig> {
        if self.round < 0 {
            return Err(invalid_arg("round must be >= 0"));
        }
        let cfg = secagg::RoundConfig {
            ctx: secagg::RoundContext {
                experiment_id: self.experiment_id.clone(),
                round: self.round as u64,
            },
            cohort: self.cohort.clone(),
            neighbours: self.neighbours,
            threshold: self.threshold,
            bits: self.bits,
            vector_len: self.vector_len,
            graph_seed: seed32(&self.graph_seed, "graphSeed")?,
        };
        cfg.validate().map_err(to_napi)?;
        Ok(cfg)
    }
}

/// A message addressed to one client.
#[napi(object)]
pub struct Outgoing {
    pub recipient: u32,
    pub message: Buffer,
}

pub(crate) fn outgoing<T: serde::Serialize>(
    msgs: Vec<T>,
    recipient: impl Fn(&T) -> u32,
) -> Result<Vec<Outgoing>> {
    msgs.into_iter()
        .map(|m| {
            Ok(Outgoing {
                recipient: recipient(&m),
                message: secagg::encode(&m).map_err(to_napi)?.into(),
            })
        })
        .collect()
}

/// Sorted neighbour ids of `clientId` in the round's graph (for display/tests).
#[napi]
pub fn neighbours_of(config: RoundConfig, client_id: u32) -> Result<Vec<u32>> {
    let cfg = config.to_rust()?;
    let g = secagg::NeighbourGraph::new(&cfg.cohort, cfg.neighbours, &cfg.graph_seed)
        .map_err(to_napi)?;
    Ok(g.neighbours(client_id).to_vec())
}
