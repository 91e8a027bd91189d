//! WebAssembly build of the napi addon's API (bindings/index.d.ts), for
//! platforms without the native addon and for browsers.
//!
//! Same names, arguments and results as the addon, with `Uint8Array` where
//! the addon has `Buffer` (ts/core/secagg/backend.ts wraps them back into
//! Buffers). What the addon runs off-thread (`maskedInput`, `finish`,
//! `unmaskAggregate`) runs synchronously here and returns an already settled
//! Promise: argument errors throw, protocol errors reject, as in the addon.
//! rayon falls back to the calling thread on wasm32, and AES runs in its
//! constant-time software implementation. Errors from the protocol carry the
//! addon's "[Code] text" messages. Glue only: all logic is in crates/.

use js_sys::{Array, Object, Promise, Reflect, Uint32Array, Uint8Array};
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use secagg::{decode, encode, shamir};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface RoundConfig {
  experimentId: string;
  round: number;
  cohort: number[];
  neighbours: number;
  threshold: number;
  bits: number;
  vectorLen: number;
  graphSeed: Uint8Array;
}
export interface Outgoing { recipient: number; message: Uint8Array; }
export interface AggregateResult { sum: Uint32Array; included: number[]; dropped: number[]; }
export interface MaskTerm { seed: Uint8Array; op: 'add' | 'sub'; }
export interface ShamirShare { holder: number; share: Uint8Array; }
export interface ShamirSharing { commitments: Uint8Array[]; shares: ShamirShare[]; }
"#;

type Res<T> = Result<T, JsError>;

fn to_js(e: secagg::Error) -> JsError {
    JsError::new(&format!("[{}] {e}", e.code()))
}

fn fp_err(e: fixedpoint::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn seed32(buf: &[u8], what: &str) -> Res<[u8; 32]> {
    buf.try_into()
        .map_err(|_| JsError::new(&format!("{what} must be exactly 32 bytes, got {}", buf.len())))
}

fn random_seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    OsRng.fill_bytes(&mut s);
    s
}

// ---- reading and building plain JS objects -------------------------------

fn field(obj: &JsValue, name: &str) -> Res<JsValue> {
    if !obj.is_object() {
        return Err(JsError::new(&format!("expected an object with field {name}")));
    }
    Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|_| JsError::new(&format!("cannot read field {name}")))
}

fn as_u32(v: &JsValue, what: &str) -> Res<u32> {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) => Ok(x as u32),
        _ => Err(JsError::new(&format!("{what} must be an integer in 0..2^32"))),
    }
}

fn u32_field(obj: &JsValue, name: &str) -> Res<u32> {
    as_u32(&field(obj, name)?, name)
}

fn bytes_of(v: &JsValue, what: &str) -> Res<Vec<u8>> {
    if v.is_instance_of::<Uint8Array>() {
        Ok(Uint8Array::unchecked_from_js_ref(v).to_vec())
    } else {
        Err(JsError::new(&format!("{what} must be a Uint8Array or Buffer")))
    }
}

fn array_of(v: &JsValue, what: &str) -> Res<Array> {
    if Array::is_array(v) {
        Ok(Array::unchecked_from_js_ref(v).clone())
    } else {
        Err(JsError::new(&format!("{what} must be an array")))
    }
}

fn set(obj: &Object, name: &str, value: &JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

fn number_array(xs: &[u32]) -> Array {
    xs.iter().map(|&x| JsValue::from(x)).collect()
}

fn round_config(config: &JsValue) -> Res<secagg::RoundConfig> {
    let experiment_id = field(config, "experimentId")?
        .as_string()
        .ok_or_else(|| JsError::new("experimentId must be a string"))?;
    let round = match field(config, "round")?.as_f64() {
        Some(r) if r >= 0.0 && r.fract() == 0.0 && r <= 9007199254740991.0 => r as u64,
        Some(r) if r < 0.0 => return Err(JsError::new("round must be >= 0")),
        _ => return Err(JsError::new("round must be a non-negative integer")),
    };
    let cohort = array_of(&field(config, "cohort")?, "cohort")?
        .iter()
        .map(|v| as_u32(&v, "cohort entries"))
        .collect::<Res<Vec<_>>>()?;
    let cfg = secagg::RoundConfig {
        ctx: secagg::RoundContext { experiment_id, round },
        cohort,
        neighbours: u32_field(config, "neighbours")?,
        threshold: u32_field(config, "threshold")?,
        bits: u32_field(config, "bits")?,
        vector_len: u32_field(config, "vectorLen")?,
        graph_seed: seed32(&bytes_of(&field(config, "graphSeed")?, "graphSeed")?, "graphSeed")?,
    };
    cfg.validate().map_err(to_js)?;
    Ok(cfg)
}

fn outgoing<T: serde::Serialize>(msgs: Vec<T>, recipient: impl Fn(&T) -> u32) -> Res<Array> {
    let out = Array::new();
    for m in msgs {
        let o = Object::new();
        set(&o, "recipient", &JsValue::from(recipient(&m)));
        let bytes = encode(&m).map_err(to_js)?;
        set(&o, "message", &Uint8Array::from(bytes.as_slice()).into());
        out.push(&o);
    }
    Ok(out)
}

/// An already settled Promise, like the addon's off-thread tasks.
fn settled(r: Res<JsValue>) -> Promise {
    match r {
        Ok(v) => Promise::resolve(&v),
        Err(e) => Promise::reject(&JsValue::from(e)),
    }
}

// ---- Quantizer ---------------------------------------------------------

/// Clip to [-clip, clip] + unbiased stochastic rounding into [0, levels].
#[wasm_bindgen]
pub struct Quantizer {
    inner: fixedpoint::Quantizer,
}

#[wasm_bindgen]
impl Quantizer {
    #[wasm_bindgen(constructor)]
    pub fn new(clip: f64, bits: u32, max_summands: u32) -> Res<Quantizer> {
        Ok(Self {
            inner: fixedpoint::Quantizer::new(clip as f32, bits, max_summands).map_err(fp_err)?,
        })
    }

    #[wasm_bindgen(getter)]
    pub fn step(&self) -> f64 {
        self.inner.step()
    }

    #[wasm_bindgen(getter)]
    pub fn levels(&self) -> f64 {
        self.inner.levels() as f64
    }

    #[wasm_bindgen(getter)]
    pub fn bits(&self) -> u32 {
        self.inner.bits()
    }

    #[wasm_bindgen(js_name = errorBound)]
    pub fn error_bound(&self, n: u32) -> f64 {
        self.inner.error_bound(n)
    }

    /// seed: 32 bytes for deterministic rounding; omitted = OS randomness.
    pub fn quantize(&self, values: &[f32], seed: Option<Vec<u8>>) -> Res<Vec<u32>> {
        let seed = match seed {
            Some(s) => seed32(&s, "seed")?,
            None => random_seed(),
        };
        Ok(self.inner.quantize(values, &mut ChaCha20Rng::from_seed(seed)))
    }

    #[wasm_bindgen(js_name = dequantizeSum)]
    pub fn dequantize_sum(&self, sum: &[u32], n_summands: u32) -> Res<Vec<f32>> {
        self.inner.dequantize_sum(sum, n_summands).map_err(fp_err)
    }
}

// ---- SecAggClient --------------------------------------------------------

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

// ---- SecAggServer --------------------------------------------------------

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

// ---- free functions --------------------------------------------------------

/// Sorted neighbour ids of clientId in the round's graph.
#[wasm_bindgen(js_name = neighboursOf, unchecked_return_type = "number[]")]
pub fn neighbours_of(
    #[wasm_bindgen(unchecked_param_type = "RoundConfig")] config: JsValue,
    client_id: u32,
) -> Res<Array> {
    let cfg = round_config(&config)?;
    let g = secagg::NeighbourGraph::new(&cfg.cohort, cfg.neighbours, &cfg.graph_seed).map_err(to_js)?;
    Ok(number_array(g.neighbours(client_id)))
}

/// First `len` words of the PRG mask of a 32-byte seed (AES-256-CTR, zero IV, LE words).
#[wasm_bindgen(js_name = expandMask)]
pub fn expand_mask(seed: &[u8], len: u32) -> Res<Vec<u32>> {
    Ok(secagg::expand_mask(&seed32(seed, "seed")?, len as usize))
}

/// Apply masks to a copy of sum and reduce mod 2^bits (synchronous here).
#[wasm_bindgen(js_name = unmaskAggregate, unchecked_return_type = "Promise<Uint32Array>")]
pub fn unmask_aggregate(
    sum: &[u32],
    #[wasm_bindgen(unchecked_param_type = "MaskTerm[]")] terms: JsValue,
    bits: u32,
) -> Res<Promise> {
    if !(1..=32).contains(&bits) {
        return Err(JsError::new(&format!("bits must be in 1..=32, got {bits}")));
    }
    let terms = array_of(&terms, "terms")?
        .iter()
        .map(|t| {
            let op = match field(&t, "op")?.as_string().as_deref() {
                Some("add") => secagg::MaskOp::Add,
                Some("sub") => secagg::MaskOp::Sub,
                other => {
                    return Err(JsError::new(&format!(
                        "mask op must be \"add\" or \"sub\", got {other:?}"
                    )))
                }
            };
            Ok(secagg::MaskTerm {
                seed: seed32(&bytes_of(&field(&t, "seed")?, "mask seed")?, "mask seed")?,
                op,
            })
        })
        .collect::<Res<Vec<_>>>()?;
    let mut sum = sum.to_vec();
    secagg::unmask_aggregate(&mut sum, &terms, bits);
    let v: JsValue = Uint32Array::from(sum.as_slice()).into();
    Ok(Promise::resolve(&v))
}

fn scalar(buf: &[u8], what: &str) -> Res<shamir::Scalar> {
    shamir::scalar_from_bytes(&seed32(buf, what)?).ok_or_else(|| {
        JsError::new(&format!(
            "{what} is not a canonical Ristretto255 scalar (little-endian, below the group order l ~ 2^252)"
        ))
    })
}

/// Deterministic verifiable split of a 32-byte canonical scalar among holders 0..n-1.
#[wasm_bindgen(js_name = shamirSplit, unchecked_return_type = "ShamirSharing")]
pub fn shamir_split(secret: &[u8], threshold: u32, n: u32, seed: &[u8]) -> Res<JsValue> {
    let s = scalar(secret, "secret")?;
    let mut rng = ChaCha20Rng::from_seed(seed32(seed, "seed")?);
    let holders: Vec<u32> = (0..n).collect();
    let (c, shares) = shamir::split(&s, threshold as usize, &holders, &mut rng).map_err(to_js)?;
    let commitments: Array = c
        .to_bytes()
        .iter()
        .map(|b| JsValue::from(Uint8Array::from(&b[..])))
        .collect();
    let out_shares = Array::new();
    for (holder, y) in shares {
        let o = Object::new();
        set(&o, "holder", &JsValue::from(holder));
        set(&o, "share", &Uint8Array::from(&y.to_bytes()[..]).into());
        out_shares.push(&o);
    }
    let o = Object::new();
    set(&o, "commitments", &commitments.into());
    set(&o, "shares", &out_shares.into());
    Ok(o.into())
}

/// Reconstruct from >= threshold shares; throws [InvalidShare] on a wrong share.
#[wasm_bindgen(js_name = shamirReconstruct)]
pub fn shamir_reconstruct(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array[]")] commitments: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ShamirShare[]")] shares: JsValue,
) -> Res<Vec<u8>> {
    let raw = array_of(&commitments, "commitments")?
        .iter()
        .map(|b| seed32(&bytes_of(&b, "commitment")?, "commitment"))
        .collect::<Res<Vec<_>>>()?;
    let c = shamir::Commitments::from_bytes(&raw, 0).map_err(to_js)?;
    let shares = array_of(&shares, "shares")?
        .iter()
        .map(|s| {
            Ok((
                u32_field(&s, "holder")?,
                scalar(&bytes_of(&field(&s, "share")?, "share")?, "share")?,
            ))
        })
        .collect::<Res<Vec<_>>>()?;
    let secret = shamir::reconstruct(&c, &shares, 0, secagg::SecretKind::MaskKey).map_err(to_js)?;
    Ok(secret.to_bytes().to_vec())
}
