//! `SecAggServer` class: the director's side of one round.

use crate::client::lock;
use crate::{outgoing, to_napi, Outgoing, RoundConfig};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use secagg::decode;
use std::sync::{Arc, Mutex};

#[napi]
pub struct SecAggServer {
    // Shared with the background task of `finish`.
    inner: Arc<Mutex<secagg::Server>>,
}

#[napi(object)]
pub struct AggregateResult {
    /// Sum of the included clients' inputs mod 2^bits.
    pub sum: Uint32Array,
    /// Clients whose inputs are in the sum (pass `included.length` as
    /// `nSummands` to `Quantizer.dequantizeSum`).
    pub included: Vec<u32>,
    /// Clients that dropped after sharing keys.
    pub dropped: Vec<u32>,
}

#[napi]
impl SecAggServer {
    #[napi(constructor)]
    pub fn new(config: RoundConfig) -> Result<Self> {
        let server = secagg::Server::new(config.to_rust()?).map_err(to_napi)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(server)),
        })
    }

    #[napi]
    pub fn receive_advertise(&self, message: Buffer) -> Result<()> {
        let m = decode(&message).map_err(to_napi)?;
        lock(&self.inner, "server")?
            .receive_advertise(m)
            .map_err(to_napi)
    }

    /// Close stage 0: KeysBroadcast messages, one per client that advertised.
    #[napi]
    pub fn finish_advertise(&self) -> Result<Vec<Outgoing>> {
        let out = lock(&self.inner, "server")?
            .finish_advertise()
            .map_err(to_napi)?;
        outgoing(out, |m| m.recipient)
    }

    #[napi]
    pub fn receive_share_keys(&self, message: Buffer) -> Result<()> {
        let m = decode(&message).map_err(to_napi)?;
        lock(&self.inner, "server")?
            .receive_share_keys(m)
            .map_err(to_napi)
    }

    /// Close stage 1: ShareBundle messages, one per client that shared keys.
    #[napi]
    pub fn finish_share_keys(&self) -> Result<Vec<Outgoing>> {
        let out = lock(&self.inner, "server")?
            .finish_share_keys()
            .map_err(to_napi)?;
        outgoing(out, |m| m.recipient)
    }

    /// Adds the masked vector to the running sum (one pass, cheap).
    #[napi]
    pub fn receive_masked_input(&self, message: Buffer) -> Result<()> {
        let m = decode(&message).map_err(to_napi)?;
        lock(&self.inner, "server")?
            .receive_masked_input(m)
            .map_err(to_napi)
    }

    /// Close stage 2: UnmaskRequest messages, one per client that sent input.
    /// Later masked inputs are refused.
    #[napi]
    pub fn finish_masked_input(&self) -> Result<Vec<Outgoing>> {
        let out = lock(&self.inner, "server")?
            .finish_masked_input()
            .map_err(to_napi)?;
        outgoing(out, |m| m.recipient)
    }

    /// Verifies every revealed share; throws `[InvalidShare] ...` naming the
    /// sender if one is wrong (that response is then ignored entirely).
    #[napi]
    pub fn receive_unmask_response(&self, message: Buffer) -> Result<()> {
        let m = decode(&message).map_err(to_napi)?;
        lock(&self.inner, "server")?
            .receive_unmask_response(m)
            .map_err(to_napi)
    }

    /// Reconstruct secrets, remove masks, return the aggregate. Off-thread.
    #[napi(ts_return_type = "Promise<AggregateResult>")]
    pub fn finish(&self) -> AsyncTask<FinishTask> {
        AsyncTask::new(FinishTask {
            server: self.inner.clone(),
        })
    }
}

pub struct FinishTask {
    server: Arc<Mutex<secagg::Server>>,
}

impl Task for FinishTask {
    type Output = secagg::AggregateResult;
    type JsValue = AggregateResult;

    fn compute(&mut self) -> Result<secagg::AggregateResult> {
        lock(&self.server, "server")?.finish().map_err(to_napi)
    }

    fn resolve(&mut self, _env: Env, r: secagg::AggregateResult) -> Result<AggregateResult> {
        Ok(AggregateResult {
            sum: Uint32Array::new(r.sum),
            included: r.included,
            dropped: r.dropped,
        })
    }
}
