//! One envoy's SecAgg+ state machine (crates/secagg), as the addon's `SecAggClient`.

use super::*;

/// Client side of one round; call the stages in order.
#[wasm_bindgen]
pub struct SecAggClient {
    inner: secagg::Client,
}

#[wasm_bindgen]
impl SecAggClient {
    /// seed (32 bytes) only for reproducible tests; omitted = OS randomness.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "RoundConfig")] config: JsValue,
        client_id: u32,
        seed: Option<Vec<u8>>,
    ) -> Res<SecAggClient> {
        let cfg = round_config(&config)?;
        let seed = match seed {
            Some(s) => seed32(&s, "seed")?,
            None => random_seed(),
        };
        let inner = secagg::Client::new(cfg, client_id, &mut ChaCha20Rng::from_seed(seed)).map_err(to_js)?;
        Ok(Self { inner })
    }

    #[wasm_bindgen(getter, js_name = clientId)]
    pub fn client_id(&self) -> u32 {
        self.inner.id()
    }

    #[wasm_bindgen(js_name = advertiseKeys)]
    pub fn advertise_keys(&mut self) -> Res<Vec<u8>> {
        let msg = self.inner.advertise_keys().map_err(to_js)?;
        encode(&msg).map_err(to_js)
    }

    #[wasm_bindgen(js_name = shareKeys)]
    pub fn share_keys(&mut self, keys_broadcast: &[u8]) -> Res<Vec<u8>> {
        let bc: secagg::KeysBroadcast = decode(keys_broadcast).map_err(to_js)?;
        let msg = self.inner.share_keys(&bc).map_err(to_js)?;
        encode(&msg).map_err(to_js)
    }

    /// Synchronous here; the Promise is already settled.
    #[wasm_bindgen(js_name = maskedInput, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn masked_input(&mut self, share_bundle: &[u8], input: &[u32]) -> Res<Promise> {
        let bundle: secagg::ShareBundle = decode(share_bundle).map_err(to_js)?;
        let len = self.inner.config().vector_len as usize;
        if input.len() != len {
            return Err(JsError::new(&format!(
                "input has {} elements, the round expects {len}",
                input.len()
            )));
        }
        Ok(settled(
            self.inner
                .masked_input(&bundle, input)
                .and_then(|m| encode(&m))
                .map(|b| Uint8Array::from(b.as_slice()).into())
                .map_err(to_js),
        ))
    }

    pub fn unmask(&mut self, unmask_request: &[u8]) -> Res<Vec<u8>> {
        let req: secagg::UnmaskRequest = decode(unmask_request).map_err(to_js)?;
        let msg = self.inner.unmask(&req).map_err(to_js)?;
        encode(&msg).map_err(to_js)
    }
}
