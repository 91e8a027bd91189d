//! Reading and building plain JS objects: the glue between wasm-bindgen values and the crates' types.

use super::*;

pub(crate) fn field(obj: &JsValue, name: &str) -> Res<JsValue> {
    if !obj.is_object() {
        return Err(JsError::new(&format!("expected an object with field {name}")));
    }
    Reflect::get(obj, &JsValue::from_str(name))
        .map_err(|_| JsError::new(&format!("cannot read field {name}")))
}

pub(crate) fn as_u32(v: &JsValue, what: &str) -> Res<u32> {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) => Ok(x as u32),
        _ => Err(JsError::new(&format!("{what} must be an integer in 0..2^32"))),
    }
}

pub(crate) fn u32_field(obj: &JsValue, name: &str) -> Res<u32> {
    as_u32(&field(obj, name)?, name)
}

pub(crate) fn bytes_of(v: &JsValue, what: &str) -> Res<Vec<u8>> {
    if v.is_instance_of::<Uint8Array>() {
        Ok(Uint8Array::unchecked_from_js_ref(v).to_vec())
    } else {
        Err(JsError::new(&format!("{what} must be a Uint8Array or Buffer")))
    }
}

pub(crate) fn array_of(v: &JsValue, what: &str) -> Res<Array> {
    if Array::is_array(v) {
        Ok(Array::unchecked_from_js_ref(v).clone())
    } else {
        Err(JsError::new(&format!("{what} must be an array")))
    }
}

pub(crate) fn set(obj: &Object, name: &str, value: &JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(name), value);
}

pub(crate) fn number_array(xs: &[u32]) -> Array {
    xs.iter().map(|&x| JsValue::from(x)).collect()
}

pub(crate) fn round_config(config: &JsValue) -> Res<secagg::RoundConfig> {
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

pub(crate) fn outgoing<T: serde::Serialize>(msgs: Vec<T>, recipient: impl Fn(&T) -> u32) -> Res<Array> {
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
pub(crate) fn settled(r: Res<JsValue>) -> Promise {
    match r {
        Ok(v) => Promise::resolve(&v),
        Err(e) => Promise::reject(&JsValue::from(e)),
    }
}
