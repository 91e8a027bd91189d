//! The director's SecAgg+ state machine (crates/secagg), as the addon's `SecAggServer`.

use super::*;

/// Director side of one round.
#[wasm_bindgen]
pub struct SecAggServer {
    inner: secagg::Server,
}

#[wasm_bindgen]
impl SecAggServer {
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "RoundConfig")] config: JsValue) -> Res<SecAggServer> {
        Ok(Self {
            inner: secagg::Server::new(round_config(&config)?).map_err(to_js)?,
        })
    }

    #[wasm_bindgen(js_name = receiveAdvertise)]
    pub fn receive_advertise(&mut self, message: &[u8]) -> Res<()> {
        let m = decode(message).map_err(to_js)?;
        self.inner.receive_advertise(m).map_err(to_js)
    }

    #[wasm_bindgen(js_name = finishAdvertise, unchecked_return_type = "Outgoing[]")]
    pub fn finish_advertise(&mut self) -> Res<Array> {
        outgoing(self.inner.finish_advertise().map_err(to_js)?, |m| m.recipient)
    }

    #[wasm_bindgen(js_name = receiveShareKeys)]
    pub fn receive_share_keys(&mut self, message: &[u8]) -> Res<()> {
        let m = decode(message).map_err(to_js)?;
        self.inner.receive_share_keys(m).map_err(to_js)
    }

    #[wasm_bindgen(js_name = finishShareKeys, unchecked_return_type = "Outgoing[]")]
    pub fn finish_share_keys(&mut self) -> Res<Array> {
        outgoing(self.inner.finish_share_keys().map_err(to_js)?, |m| m.recipient)
    }

    #[wasm_bindgen(js_name = receiveMaskedInput)]
    pub fn receive_masked_input(&mut self, message: &[u8]) -> Res<()> {
        let m = decode(message).map_err(to_js)?;
        self.inner.receive_masked_input(m).map_err(to_js)
    }

    #[wasm_bindgen(js_name = finishMaskedInput, unchecked_return_type = "Outgoing[]")]
    pub fn finish_masked_input(&mut self) -> Res<Array> {
        outgoing(self.inner.finish_masked_input().map_err(to_js)?, |m| m.recipient)
    }

    #[wasm_bindgen(js_name = receiveUnmaskResponse)]
    pub fn receive_unmask_response(&mut self, message: &[u8]) -> Res<()> {
        let m = decode(message).map_err(to_js)?;
        self.inner.receive_unmask_response(m).map_err(to_js)
    }

    /// Synchronous here; the Promise is already settled.
    #[wasm_bindgen(unchecked_return_type = "Promise<AggregateResult>")]
    pub fn finish(&mut self) -> Promise {
        settled(self.inner.finish().map_err(to_js).map(|r| {
            let o = Object::new();
            set(&o, "sum", &Uint32Array::from(r.sum.as_slice()).into());
            set(&o, "included", &number_array(&r.included).into());
            set(&o, "dropped", &number_array(&r.dropped).into());
            o.into()
        }))
    }
}
