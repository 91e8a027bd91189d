//! End-to-end runs of the four-stage protocol, with every message going
//! through its MessagePack encoding as it would over the wire.

use fixedpoint::Quantizer;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use secagg::*;
use std::collections::{BTreeMap, BTreeSet};

fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(msg: T) -> T {
    decode(&encode(&msg).unwrap()).unwrap()
}

fn config(n: u32, k: u32, t: u32, bits: u32, len: u32, round: u64) -> RoundConfig {
    RoundConfig {
        ctx: RoundContext {
            experiment_id: "pneumonia-fl".into(),
            round,
        },
        cohort: (0..n).map(|i| 100 + 3 * i).collect(), // non-contiguous ids
        neighbours: k,
        threshold: t,
        bits,
        vector_len: len,
        graph_seed: [round as u8; 32],
    }
}

/// What drops out where.
#[derive(Default, Clone)]
struct Dropouts {
    before_advertise: BTreeSet<ClientId>,
    before_share_keys: BTreeSet<ClientId>,
    before_masked_input: BTreeSet<ClientId>,
    before_unmask: BTreeSet<ClientId>,
}

struct Round {
    server: Server,
    clients: BTreeMap<ClientId, Client>,
    inputs: BTreeMap<ClientId, Vec<u32>>,
}

fn setup(cfg: &RoundConfig, seed: u64, inputs: BTreeMap<ClientId, Vec<u32>>) -> Round {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let clients = cfg
        .cohort
        .iter()
        .map(|&id| (id, Client::new(cfg.clone(), id, &mut rng).unwrap()))
        .collect();
    Round {
        server: Server::new(cfg.clone()).unwrap(),
        clients,
        inputs,
    }
}

fn quantized_inputs(
    cfg: &RoundConfig,
    q: &Quantizer,
    seed: u64,
) -> (BTreeMap<ClientId, Vec<u32>>, BTreeMap<ClientId, Vec<f32>>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut floats = BTreeMap::new();
    let mut quant = BTreeMap::new();
    for &id in &cfg.cohort {
        let x: Vec<f32> = (0..cfg.vector_len)
            .map(|_| ((rng.next_u32() as f64 / u32::MAX as f64) * 2.0 - 1.0) as f32 * q.clip())
            .collect();
        quant.insert(id, q.quantize(&x, &mut rng));
        floats.insert(id, x);
    }
    (quant, floats)
}

/// Run stages 0-2 and return the unmask requests.
fn run_until_unmask(r: &mut Round, d: &Dropouts) -> Vec<UnmaskRequest> {
    try_until_unmask(r, d).unwrap()
}

/// Stages 0-2; only the final (recoverability-checking) step may fail.
fn try_until_unmask(r: &mut Round, d: &Dropouts) -> Result<Vec<UnmaskRequest>> {
    for (&id, c) in r.clients.iter_mut() {
        if !d.before_advertise.contains(&id) {
            r.server
                .receive_advertise(wire(c.advertise_keys().unwrap()))
                .unwrap();
        }
    }
    let broadcasts = r.server.finish_advertise().unwrap();
    for b in broadcasts {
        if !d.before_share_keys.contains(&b.recipient) {
            let c = r.clients.get_mut(&b.recipient).unwrap();
            r.server
                .receive_share_keys(wire(c.share_keys(&wire(b)).unwrap()))
                .unwrap();
        }
    }
    let bundles = r.server.finish_share_keys().unwrap();
    for b in bundles {
        if !d.before_masked_input.contains(&b.recipient) {
            let c = r.clients.get_mut(&b.recipient).unwrap();
            let m = c.masked_input(&wire(b), &r.inputs[&c.id()]).unwrap();
            r.server.receive_masked_input(wire(m)).unwrap();
        }
    }
    r.server.finish_masked_input()
}

fn run_round(r: &mut Round, d: &Dropouts) -> AggregateResult {
    let requests = run_until_unmask(r, d);
    for req in requests {
        if !d.before_unmask.contains(&req.recipient) {
            let c = r.clients.get_mut(&req.recipient).unwrap();
            r.server
                .receive_unmask_response(wire(c.unmask(&wire(req)).unwrap()))
                .unwrap();
        }
    }
    r.server.finish().unwrap()
}

fn plain_sum(inputs: &BTreeMap<ClientId, Vec<u32>>, who: &[ClientId], bits: u32) -> Vec<u32> {
    let mut s = vec![0u32; inputs.values().next().unwrap().len()];
    for id in who {
        masking::add_assign(&mut s, &inputs[id]);
    }
    masking::reduce(&mut s, bits);
    s
}

#[test]
fn secagg_plus_n10_with_20_percent_dropout_after_share_keys() {
    let cfg = config(10, 6, 4, 24, 2_000, 1);
    let q = Quantizer::new(0.5, cfg.bits, 10).unwrap();
    let (quant, floats) = quantized_inputs(&cfg, &q, 42);
    let mut r = setup(&cfg, 7, quant.clone());
    let d = Dropouts {
        before_masked_input: [103, 118].into(),
        ..Default::default()
    };
    let result = run_round(&mut r, &d);

    let survivors: Vec<ClientId> = cfg
        .cohort
        .iter()
        .copied()
        .filter(|c| !d.before_masked_input.contains(c))
        .collect();
    assert_eq!(result.included, survivors);
    assert_eq!(result.dropped, vec![103, 118]);
    assert_eq!(
        result.sum,
        plain_sum(&quant, &survivors, cfg.bits),
        "unmasked sum must equal the plain sum exactly"
    );

    // And it decodes to the float sum within the quantizer's bound.
    let decoded = q
        .dequantize_sum(&result.sum, survivors.len() as u32)
        .unwrap();
    for (i, v) in decoded.iter().enumerate() {
        let exact: f64 = survivors.iter().map(|c| f64::from(floats[c][i])).sum();
        assert!((exact - f64::from(*v)).abs() <= q.error_bound(survivors.len() as u32));
    }
}

#[test]
fn full_secagg_with_dropouts_at_every_stage() {
    // k >= n - 1: complete graph, i.e. original SecAgg. 32-bit modulus.
    let cfg = config(8, 100, 3, 32, 777, 2);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let inputs: BTreeMap<_, _> = cfg
        .cohort
        .iter()
        .map(|&c| (c, (0..777).map(|_| rng.next_u32()).collect()))
        .collect();
    let mut r = setup(&cfg, 8, inputs.clone());
    let d = Dropouts {
        before_advertise: [100].into(),
        before_share_keys: [103].into(),
        before_masked_input: [106].into(),
        before_unmask: [109].into(), // still in the sum: it sent its input
    };
    let result = run_round(&mut r, &d);
    let included = vec![109, 112, 115, 118, 121];
    assert_eq!(result.included, included);
    assert_eq!(result.dropped, vec![106]);
    assert_eq!(result.sum, plain_sum(&inputs, &included, 32));
}

#[test]
fn no_dropouts_small_modulus() {
    let cfg = config(6, 2, 2, 9, 300, 3);
    let inputs: BTreeMap<_, _> = cfg
        .cohort
        .iter()
        .map(|&c| (c, (0..300).map(|i| (i * c) % 512).collect()))
        .collect();
    let mut r = setup(&cfg, 9, inputs.clone());
    let result = run_round(&mut r, &Dropouts::default());
    assert!(result.dropped.is_empty());
    assert_eq!(result.sum, plain_sum(&inputs, &cfg.cohort, 9));
}

#[test]
fn masked_inputs_hide_the_input() {
    let cfg = config(4, 3, 2, 32, 64, 4);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![0u32; 64])).collect();
    let mut r = setup(&cfg, 10, inputs);
    for (_, c) in r.clients.iter_mut() {
        r.server
            .receive_advertise(c.advertise_keys().unwrap())
            .unwrap();
    }
    for b in r.server.finish_advertise().unwrap() {
        let c = r.clients.get_mut(&b.recipient).unwrap();
        r.server
            .receive_share_keys(c.share_keys(&b).unwrap())
            .unwrap();
    }
    let b = r.server.finish_share_keys().unwrap().remove(0);
    let c = r.clients.get_mut(&b.recipient).unwrap();
    let m = c.masked_input(&b, &[0; 64]).unwrap();
    // An all-zero input must come out looking uniformly random.
    assert!(m.masked.iter().filter(|&&w| w == 0).count() <= 1);
}

#[test]
fn too_many_dropouts_is_a_clear_error() {
    let cfg = config(6, 2, 2, 16, 10, 5);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![1u32; 10])).collect();
    let mut r = setup(&cfg, 11, inputs);
    for (&id, c) in r.clients.iter_mut() {
        if id != 100 {
            r.server
                .receive_advertise(c.advertise_keys().unwrap())
                .unwrap();
        }
    }
    // With k = 2 and t = 2, the two ring neighbours of client 100 now have one live neighbour.
    let err = r.server.finish_advertise().unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooFew {
                have: 1,
                need: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn replayed_share_from_another_round_is_rejected() {
    let cfg1 = config(5, 4, 3, 16, 8, 1);
    let cfg2 = config(5, 4, 3, 16, 8, 2);
    let zero: BTreeMap<_, _> = cfg1.cohort.iter().map(|&c| (c, vec![0u32; 8])).collect();
    let mut r1 = setup(&cfg1, 12, zero.clone());
    let mut r2 = setup(&cfg2, 13, zero);
    let mut share_msgs = BTreeMap::new();
    for r in [&mut r1, &mut r2] {
        for (_, c) in r.clients.iter_mut() {
            r.server
                .receive_advertise(c.advertise_keys().unwrap())
                .unwrap();
        }
        for b in r.server.finish_advertise().unwrap() {
            let c = r.clients.get_mut(&b.recipient).unwrap();
            let sk = c.share_keys(&b).unwrap();
            share_msgs.insert((r.server.config().ctx.round, sk.sender), sk.clone());
            r.server.receive_share_keys(sk).unwrap();
        }
    }
    let bundles1 = r1.server.finish_share_keys().unwrap();
    let c = r2.clients.get_mut(&100).unwrap();

    // 1. Replayed as-is: the context check names the rounds.
    let replay = bundles1
        .iter()
        .find(|b| b.recipient == 100)
        .unwrap()
        .clone();
    let err = c.masked_input(&replay, &[0; 8]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongRound {
                expected_round: 2,
                got_round: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("replayed"));

    // 2. Context field rewritten: the AEAD (keys + associated data bound to
    //    the round) rejects the round-1 ciphertext.
    let mut forged = replay.clone();
    forged.ctx = cfg2.ctx.clone();
    let err = c.masked_input(&forged, &[0; 8]).unwrap_err();
    assert!(
        matches!(err, Error::ShareAuthentication { recipient: 100, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("failed authentication"));

    // 3. Replaying a stage message to the server of another round.
    let mut server2 = Server::new(cfg2.clone()).unwrap();
    let err = server2
        .receive_share_keys(share_msgs[&(1, 103)].clone())
        .unwrap_err();
    assert!(matches!(err, Error::WrongRound { .. }));
}

#[test]
fn tampered_ciphertext_is_rejected_with_sender_named() {
    let cfg = config(5, 4, 3, 16, 8, 6);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![0u32; 8])).collect();
    let mut r = setup(&cfg, 14, inputs);
    for (_, c) in r.clients.iter_mut() {
        r.server
            .receive_advertise(c.advertise_keys().unwrap())
            .unwrap();
    }
    for b in r.server.finish_advertise().unwrap() {
        let c = r.clients.get_mut(&b.recipient).unwrap();
        r.server
            .receive_share_keys(c.share_keys(&b).unwrap())
            .unwrap();
    }
    let mut b = r.server.finish_share_keys().unwrap().remove(0);
    let sender = b.shares[1].sender;
    b.shares[1].ciphertext[5] ^= 1;
    let c = r.clients.get_mut(&b.recipient).unwrap();
    let err = c.masked_input(&b, &[0; 8]).unwrap_err();
    assert_eq!(
        err,
        Error::ShareAuthentication {
            sender,
            recipient: 100
        }
    );
    assert_eq!(err.to_string(), format!("share from client {sender} to client 100 failed authentication (tampered, or encrypted for another round/experiment)"));
}

#[test]
fn wrong_revealed_share_is_detected_and_round_still_completes() {
    // Full graph over 6 clients, t = 3: each secret has 5 holders.
    let cfg = config(6, 5, 3, 20, 100, 7);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![c; 100])).collect();
    let mut r = setup(&cfg, 15, inputs.clone());
    let d = Dropouts {
        before_masked_input: [115].into(),
        ..Default::default()
    };
    let requests = run_until_unmask(&mut r, &d);
    let mut cheated = false;
    for req in requests {
        let c = r.clients.get_mut(&req.recipient).unwrap();
        let mut resp = c.unmask(&req).unwrap();
        if !cheated && !resp.mask_key_shares.is_empty() {
            cheated = true;
            resp.mask_key_shares[0].share[0] ^= 1;
            let owner = resp.mask_key_shares[0].owner;
            let err = r.server.receive_unmask_response(resp).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidShare {
                    owner,
                    holder: req.recipient,
                    kind: SecretKind::MaskKey
                }
            );
            assert!(err
                .to_string()
                .contains(&format!("held by client {}", req.recipient)));
            continue;
        }
        r.server.receive_unmask_response(resp).unwrap();
    }
    assert!(cheated);
    let result = r.server.finish().unwrap();
    assert_eq!(result.sum, plain_sum(&inputs, &result.included, 20));
}

#[test]
fn client_refuses_to_reveal_both_secrets_of_a_neighbour() {
    let cfg = config(5, 4, 2, 16, 8, 8);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![0u32; 8])).collect();
    let mut r = setup(&cfg, 16, inputs);
    let mut requests = run_until_unmask(&mut r, &Dropouts::default());
    let mut req = requests.remove(0);
    let victim = req.reveal_self_seed[0];
    req.reveal_mask_key.push(victim);
    let c = r.clients.get_mut(&req.recipient).unwrap();
    assert_eq!(
        c.unmask(&req).unwrap_err(),
        Error::ConflictingSecretRequest(victim)
    );
    // The server's own requests never overlap, and each client is in exactly one ledger entry.
    for rq in &requests {
        let s: BTreeSet<_> = rq.reveal_self_seed.iter().collect();
        assert!(rq.reveal_mask_key.iter().all(|v| !s.contains(v)));
    }
}

#[test]
fn client_answers_only_one_unmask_request() {
    let cfg = config(5, 4, 2, 16, 8, 9);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![0u32; 8])).collect();
    let mut r = setup(&cfg, 17, inputs);
    let requests = run_until_unmask(&mut r, &Dropouts::default());
    let req = &requests[0];
    let c = r.clients.get_mut(&req.recipient).unwrap();
    c.unmask(req).unwrap();
    // A second request (e.g. now claiming a neighbour dropped) is refused.
    let mut second = req.clone();
    second.reveal_mask_key = std::mem::take(&mut second.reveal_self_seed);
    assert!(matches!(c.unmask(&second), Err(Error::WrongStage { .. })));
}

#[test]
fn late_masked_input_is_refused_after_unmask_requests() {
    let cfg = config(5, 4, 2, 16, 8, 10);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![3u32; 8])).collect();
    let mut r = setup(&cfg, 18, inputs);
    for (_, c) in r.clients.iter_mut() {
        r.server
            .receive_advertise(c.advertise_keys().unwrap())
            .unwrap();
    }
    for b in r.server.finish_advertise().unwrap() {
        let c = r.clients.get_mut(&b.recipient).unwrap();
        r.server
            .receive_share_keys(c.share_keys(&b).unwrap())
            .unwrap();
    }
    let mut late = None;
    for b in r.server.finish_share_keys().unwrap() {
        let c = r.clients.get_mut(&b.recipient).unwrap();
        let m = c.masked_input(&b, &[3; 8]).unwrap();
        if b.recipient == 106 {
            late = Some(m);
        } else {
            r.server.receive_masked_input(m).unwrap();
        }
    }
    r.server.finish_masked_input().unwrap();
    assert_eq!(r.server.ledger().kind_of(106), Some(SecretKind::MaskKey));
    let err = r.server.receive_masked_input(late.unwrap()).unwrap_err();
    assert!(matches!(err, Error::WrongStage { .. }), "{err}");
}

#[test]
fn stage_order_and_inputs_are_validated() {
    let cfg = config(4, 3, 2, 8, 4, 11);
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let mut c = Client::new(cfg.clone(), 100, &mut rng).unwrap();
    let mut s = Server::new(cfg.clone()).unwrap();
    assert!(matches!(
        s.finish_share_keys(),
        Err(Error::WrongStage { .. })
    ));
    assert!(matches!(
        Client::new(cfg.clone(), 5, &mut rng),
        Err(Error::UnknownClient(5))
    ));
    let adv = c.advertise_keys().unwrap();
    assert!(matches!(c.advertise_keys(), Err(Error::WrongStage { .. })));
    s.receive_advertise(adv.clone()).unwrap();
    assert_eq!(s.receive_advertise(adv), Err(Error::Duplicate(100)));
    let bad = RoundConfig {
        threshold: 4,
        ..cfg.clone()
    };
    assert!(matches!(Server::new(bad), Err(Error::InvalidParameters(_))));
    let bad = RoundConfig {
        neighbours: 3,
        cohort: (0..10).collect(),
        ..cfg
    };
    assert!(matches!(Server::new(bad), Err(Error::InvalidParameters(_))));
}

#[test]
fn finish_names_the_secret_that_lacks_shares() {
    let cfg = config(8, 100, 4, 32, 16, 12);
    let inputs: BTreeMap<_, _> = cfg.cohort.iter().map(|&c| (c, vec![1u32; 16])).collect();
    let mut r = setup(&cfg, 20, inputs);
    let d = Dropouts {
        before_masked_input: [100, 103, 106].into(),
        before_unmask: [109].into(),
        ..Default::default()
    };
    let requests = run_until_unmask(&mut r, &d);
    for req in requests.iter().filter(|q| q.recipient != 109) {
        let c = r.clients.get_mut(&req.recipient).unwrap();
        r.server
            .receive_unmask_response(c.unmask(req).unwrap())
            .unwrap();
    }
    let err = r.server.finish().unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooFew {
                have: 3,
                need: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("valid shares of the"), "{err}");
}

#[test]
fn random_dropout_patterns_always_sum_exactly() {
    let mut completed = 0;
    for seed in 0..12u64 {
        let mut rng = ChaCha20Rng::seed_from_u64(1000 + seed);
        let cfg = config(12, 6, 3, 16, 50, 100 + seed);
        let inputs: BTreeMap<_, _> = cfg
            .cohort
            .iter()
            .map(|&c| (c, (0..50).map(|_| rng.next_u32() & 0xffff).collect()))
            .collect();
        let mut r = setup(&cfg, seed, inputs.clone());
        // Drop ~15% of clients after share keys and ~10% before unmasking.
        let mut d = Dropouts::default();
        for &c in &cfg.cohort {
            match rng.next_u32() % 20 {
                0..=2 => drop(d.before_masked_input.insert(c)),
                3..=4 => drop(d.before_unmask.insert(c)),
                _ => {}
            }
        }
        let requests = match try_until_unmask(&mut r, &d) {
            Ok(reqs) => reqs,
            Err(Error::TooFew { .. }) => continue, // legitimate abort
            Err(e) => panic!("seed {seed}: {e}"),
        };
        for req in requests
            .iter()
            .filter(|q| !d.before_unmask.contains(&q.recipient))
        {
            let c = r.clients.get_mut(&req.recipient).unwrap();
            r.server
                .receive_unmask_response(c.unmask(req).unwrap())
                .unwrap();
        }
        match r.server.finish() {
            Ok(result) => {
                assert_eq!(
                    result.sum,
                    plain_sum(&inputs, &result.included, 16),
                    "seed {seed}"
                );
                completed += 1;
            }
            // Too few surviving holders is a legitimate abort, never a wrong sum.
            Err(Error::TooFew { .. }) => {}
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    assert!(completed >= 6, "only {completed} of 12 rounds completed");
}
