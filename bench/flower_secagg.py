"""Flower SecAgg+ (flwr from PyPI) arithmetic timed for bench/secagg.bench.ts.

Reproduces, with flwr's own functions, the work of
  - the server's collect_masked_vectors stage (sum of the survivors' masked int64 vectors, then mod) and
  - its unmask stage (flwr/server/workflow/secure_aggregation/secaggplus_workflow.py, SecAggPlusWorkflow.unmask_stage):
    combine_shares per sampled node; for a survivor pseudo_rand_gen(rd_seed) and subtract; for a dropped node
    generate_shared_key with each of its ring neighbours, pseudo_rand_gen and add/subtract; finally parameters_mod,
  - one client's _mask stage arithmetic (flwr/client/mod/secure_aggregation/secaggplus_mod.py): self mask + one
    pairwise mask per neighbour, then mod,
on the same n, d, neighbours and dropouts as the TypeScript bench, without the gRPC transport.

usage: python bench/flower_secagg.py < cells.json > results.json
  stdin: {"cells": [{"n":10,"k":8,"dropped":[0,5],"d":1000000,"reps":3,"envoy_samples":2}], "budget_s": 30}
"""

import json
import math
import os
import sys
import time

import numpy as np

import flwr
from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares
from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
from flwr.common.secure_aggregation.ndarrays_arithmetic import (
    get_parameters_shape,
    parameters_addition,
    parameters_mod,
    parameters_subtraction,
)
from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
from flwr.supercore.primitives.asymmetric import (
    bytes_to_private_key,
    bytes_to_public_key,
    generate_key_pairs,
    private_key_to_bytes,
    public_key_to_bytes,
)

MOD_RANGE = 1 << 32  # SecAggPlusWorkflow default modulus_range
QUANT_RANGE = 1 << 22  # default quantization_range


def ring_neighbours(n, k):
    """SecAggPlusWorkflow.setup_stage: num_shares = k + 1 (self included), ring of half_share each side."""
    half = (k + 1) >> 1
    return {i: {(i + off) % n for off in range(-half, half + 1)} for i in range(n)}


def prg_rate(d):
    """Raw pseudo_rand_gen words/s at this d (one call, best of 2)."""
    best = math.inf
    for _ in range(2):
        t = time.perf_counter()
        pseudo_rand_gen(os.urandom(32), MOD_RANGE, [(d,)])
        best = min(best, time.perf_counter() - t)
    return d / best


def run_cell(cell, budget_s, rate):
    n, k, d = cell["n"], cell["k"], cell["d"]
    dropped = set(cell["dropped"])
    reps = cell.get("reps", 1)
    rng = np.random.default_rng(n * 7919 + d)
    nbrs = ring_neighbours(n, k)
    active = set(range(n)) - dropped
    # Server loop of unmask_stage: survivors -> 1 mask, dropped -> one per ring neighbour (all of them, as flwr does).
    terms = len(active) + sum(len(nbrs[i] - {i}) for i in dropped)
    out = {"n": n, "k": k, "d": d, "dropped": len(dropped), "survivors": len(active), "flower_unmask_terms": terms,
           "flower_num_shares": k + 1}
    shape = [(1,), (d,)]  # [factor, parameters] as in factor_combine

    # Setup (untimed): keys, seeds, shares.
    threshold = max(2, round(0.66 * (k + 1)))
    keys = {}
    for i in range(n):
        sk, pk = generate_key_pairs()
        keys[i] = (private_key_to_bytes(sk), public_key_to_bytes(pk))
    rd_seed = {i: os.urandom(32) for i in range(n)}
    shares = {}
    for i in range(n):
        secret = rd_seed[i] if i in active else keys[i][0]
        holders = [j for j in sorted(nbrs[i]) if j in active]
        shares[i] = create_shares(secret, threshold, k + 1)[: max(threshold, len(holders))]

    # Plain (unmasked) sum baseline, numpy int64 like flwr's vectors.
    vec = [np.array([QUANT_RANGE], dtype=np.int64), rng.integers(0, MOD_RANGE, d, dtype=np.int64)]
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        acc = vec
        for _ in range(len(active) - 1):
            acc = parameters_addition(acc, vec)
        best = min(best, time.perf_counter() - t)
    out["plain_sum_s"] = best

    # Director: collect_masked_vectors_stage sum + mod.
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        masked = None
        for _ in range(len(active)):
            masked = vec if masked is None else parameters_addition(masked, vec)
        masked = parameters_mod(masked, MOD_RANGE)
        best = min(best, time.perf_counter() - t)
    out["director_aggregate_s"] = best

    est = terms * d / rate
    if est > budget_s:
        out["director_unmask_skipped"] = f"estimated {est:.0f} s (> budget {budget_s} s) at {rate/1e6:.0f} M words/s"
    else:
        samples = []
        for _ in range(reps):
            masked_vector = masked
            t = time.perf_counter()
            for nid in range(n):
                secret = combine_shares(shares[nid])
                if nid in active:
                    private_mask = pseudo_rand_gen(secret, MOD_RANGE, get_parameters_shape(masked_vector))
                    masked_vector = parameters_subtraction(masked_vector, private_mask)
                else:
                    for neighbor_nid in nbrs[nid] - {nid}:
                        shared_key = generate_shared_key(bytes_to_private_key(secret),
                                                         bytes_to_public_key(keys[neighbor_nid][1]))
                        pairwise_mask = pseudo_rand_gen(shared_key, MOD_RANGE, get_parameters_shape(masked_vector))
                        if nid > neighbor_nid:
                            masked_vector = parameters_addition(masked_vector, pairwise_mask)
                        else:
                            masked_vector = parameters_subtraction(masked_vector, pairwise_mask)
            parameters_mod(masked_vector, MOD_RANGE)
            samples.append(time.perf_counter() - t)
        out["director_unmask_s"] = min(samples)
        out["director_unmask_median_s"] = sorted(samples)[len(samples) // 2]
        out["director_unmask_samples_s"] = samples

    # Envoy: _mask stage (self mask + k pairwise masks + mod).
    est = (k + 1) * d / rate
    envoy_samples = cell.get("envoy_samples", 1)
    if est * envoy_samples > budget_s:
        out["envoy_mask_skipped"] = f"estimated {est * envoy_samples:.0f} s (> budget {budget_s} s)"
    else:
        times = []
        for me in list(sorted(active))[:envoy_samples]:
            t = time.perf_counter()
            q = parameters_addition(vec, pseudo_rand_gen(rd_seed[me], MOD_RANGE, shape))
            for nid in sorted(nbrs[me] - {me}):
                sk = generate_shared_key(bytes_to_private_key(keys[me][0]), bytes_to_public_key(keys[nid][1]))
                m = pseudo_rand_gen(sk, MOD_RANGE, shape)
                q = parameters_addition(q, m) if me > nid else parameters_subtraction(q, m)
            parameters_mod(q, MOD_RANGE)
            times.append(time.perf_counter() - t)
        out["envoy_mask_s"] = sum(times) / len(times)
        out["envoy_mask_samples"] = len(times)
    return out


def main():
    spec = json.load(sys.stdin)
    budget = float(spec.get("budget_s", 30))
    rate = prg_rate(10 ** 6)
    res = {"flwr_version": flwr.__version__, "numpy_version": np.__version__,
           "pseudo_rand_gen_words_per_s": rate, "cells": []}
    for cell in spec["cells"]:
        res["cells"].append(run_cell(cell, budget, rate))
        print(f"flower: n={cell['n']} d={cell['d']} dropped={len(cell['dropped'])} done", file=sys.stderr, flush=True)
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()
