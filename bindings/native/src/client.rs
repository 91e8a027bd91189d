//! `SecAggClient` class: one instance per envoy per round.

use crate::{invalid_arg, seed32, to_napi, RoundConfig};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use secagg::{decode, encode};
use std::sync::{Arc, Mutex, MutexGuard};

#[napi]
pub struct SecAggClient {
    // Shared with the background task of `maskedInput`.
    inner: Arc<Mutex<secagg::Client>>,
}

pub(crate) fn lock<'a, T>(m: &'a Mutex<T>, what: &str) -> Result<MutexGuard<'a, T>> {
    m.try_lock().map_err(|_| {
        Error::new(
            Status::GenericFailure,
            format!("{what} is busy with an unfinished async operation (await it first)"),
        )
    })
}

#[napi]
impl SecAggClient {
    /// Fresh per-round secrets come from the OS RNG unless a 32-byte
    /// `seed` is given (tests/demos only: a fixed seed makes secrets predictable).
    #[napi(constructor)]
    pub fn new(config: RoundConfig, client_id: u32, seed: Option<Buffer>) -> Result<Self> {
        let cfg = config.to_rust()?;
        let client = match seed {
            Some(s) => secagg::Client::new(
                cfg,
                client_id,
                &mut ChaCha20Rng::from_seed(seed32(&s, "seed")?),
            ),
            None => {
                let mut s = [0u8; 32];
                OsRng.fill_bytes(&mut s);
                secagg::Client::new(cfg, client_id, &mut ChaCha20Rng::from_seed(s))
            }
        }
        .map_err(to_napi)?;
        Ok(Self {
            inner: Arc::new(Mutex::new(client)),
        })
    }

    #[napi(getter)]
    pub fn client_id(&self) -> Result<u32> {
        Ok(lock(&self.inner, "client")?.id())
    }

    /// Stage 0 -> AdvertiseKeys message.
    #[napi]
    pub fn advertise_keys(&self) -> Result<Buffer> {
        let msg = lock(&self.inner, "client")?
            .advertise_keys()
            .map_err(to_napi)?;
        Ok(encode(&msg).map_err(to_napi)?.into())
    }

    /// Stage 1: KeysBroadcast message -> ShareKeys message.
    #[napi]
    pub fn share_keys(&self, keys_broadcast: Buffer) -> Result<Buffer> {
        let bc: secagg::KeysBroadcast = decode(&keys_broadcast).map_err(to_napi)?;
        let msg = lock(&self.inner, "client")?
            .share_keys(&bc)
            .map_err(to_napi)?;
        Ok(encode(&msg).map_err(to_napi)?.into())
    }

    /// Stage 2: ShareBundle message + quantized input (elements < 2^bits)
    /// -> MaskedInput message. Runs off the main thread.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn masked_input(
        &self,
        share_bundle: Buffer,
        input: Uint32Array,
    ) -> Result<AsyncTask<MaskTask>> {
        let bundle: secagg::ShareBundle = decode(&share_bundle).map_err(to_napi)?;
        let len = lock(&self.inner, "client")?.config().vector_len as usize;
        if input.len() != len {
            return Err(invalid_arg(format!(
                "input has {} elements, the round expects {len}",
                input.len()
            )));
        }
        Ok(AsyncTask::new(MaskTask {
            client: self.inner.clone(),
            bundle,
            input: input.to_vec(),
        }))
    }

    /// Stage 3: UnmaskRequest message -> UnmaskResponse message.
    #[napi]
    pub fn unmask(&self, unmask_request: Buffer) -> Result<Buffer> {
        let req: secagg::UnmaskRequest = decode(&unmask_request).map_err(to_napi)?;
        let msg = lock(&self.inner, "client")?.unmask(&req).map_err(to_napi)?;
        Ok(encode(&msg).map_err(to_napi)?.into())
    }
}

pub struct MaskTask {
    client: Arc<Mutex<secagg::Client>>,
    bundle: secagg::ShareBundle,
    input: Vec<u32>,
}

impl Task for MaskTask {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> Result<Vec<u8>> {
        let msg = lock(&self.client, "client")?
            .masked_input(&self.bundle, &self.input)
            .map_err(to_napi)?;
        encode(&msg).map_err(to_napi)
    }

    fn resolve(&mut self, _env: Env, output: Vec<u8>) -> Result<Buffer> {
        Ok(output.into())
    }
}
