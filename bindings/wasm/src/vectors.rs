//! Free functions: the neighbour graph, mask expansion and unmasking, Shamir shares.

use super::*;

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
