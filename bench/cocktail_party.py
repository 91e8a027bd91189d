"""
The Cocktail Party Attack's core (Kariyappa et al., ICML 2023), on one recorded secure sum: the gradient of a
dense layer is a mixture of its inputs, dW = G X^T (K rows, each sum_i g_ri x_i over the batch's B inputs), so
independent component analysis over the input dimension can separate the x_i. FastICA (symmetric, the exp
non-linearity for sparse sources) on the update of PRECODE's encoder, whitened to the mixture's numerical rank.

Scored against the true conv features of the batch (what feature inversion would need): for each image, the
best |cosine| of a recovered source with its features, beside the best |cosine| with another image's features
(what a source that is no one in particular scores). Run twice: on the recorded update, and on an ideal mixture
of the same features (random Gaussian G, no quantization), which separates a failure of the observation from a
failure of the sources (ICA needs them independent).

  python bench/cocktail_party.py <folder written by bench/cocktail-party.bench.ts>   -> one JSON line
"""
import json
import sys

import numpy as np


def fast_ica(mixture: np.ndarray, components: int, seed: int, iterations: int = 3000, tolerance: float = 1e-5):
    """Sources [components, samples] from mixture [K, samples] (rows: observations)."""
    centered = mixture - mixture.mean(axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    white = vt[:components] * np.sqrt(mixture.shape[1])
    w = np.linalg.qr(np.random.default_rng(seed).standard_normal((components, components)))[0]
    for iteration in range(iterations):
        wx = w @ white
        e = np.exp(-wx ** 2 / 2)
        updated = ((wx * e) @ white.T) / white.shape[1] - ((1 - wx ** 2) * e).mean(axis=1)[:, None] * w
        u, _, v = np.linalg.svd(updated)
        updated = u @ v
        change = np.max(np.abs(np.abs(np.diag(updated @ w.T)) - 1))
        w = updated
        if change < tolerance:
            break
    return w @ white, iteration + 1, float(change)


def unit_rows(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    return a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-30)


def scores(sources: np.ndarray, features: np.ndarray) -> dict:
    best = np.abs(unit_rows(sources) @ unit_rows(features).T).max(axis=0)
    others = np.abs(unit_rows(features) @ unit_rows(features).T)
    np.fill_diagonal(others, 0)
    chance = others.max(axis=0)
    return {
        'best_cosine_max': float(best.max()), 'best_cosine_median': float(np.median(best)),
        'images_above_0_9': int((best > 0.9).sum()), 'images_above_chance': int((best > chance).sum()),
        'chance_cosine_median': float(np.median(chance)),
    }


def numerical_rank(mixture: np.ndarray, batch: int) -> int:
    """Singular values above the quantization floor (twice the median of those past the batch size), at most batch."""
    s = np.linalg.svd(mixture, compute_uv=False)
    if len(s) <= batch:
        return batch
    return int(min(batch, (s > 2 * np.median(s[batch:])).sum()))


def main(folder: str) -> None:
    meta = json.load(open(f'{folder}/meta.json'))
    update = np.fromfile(f'{folder}/encoder-update.f32', np.float32).reshape(meta['encoder_update']).astype(np.float64).T
    features = np.fromfile(f'{folder}/features.f32', np.float32).reshape(meta['features']).astype(np.float64)
    batch = features.shape[0]
    rank = numerical_rank(update, batch)
    observed, its, change = fast_ica(update, rank, seed=1)
    ideal_mixture = np.random.default_rng(5).standard_normal((update.shape[0], batch)) @ features
    ideal, ideal_its, ideal_change = fast_ica(ideal_mixture, batch, seed=1)
    print(json.dumps({
        'batch': batch, 'rows': update.shape[0], 'feature_dims': features.shape[1], 'numerical_rank': rank,
        'observed': {**scores(observed, features), 'iterations': its, 'last_change': change},
        'ideal_mixture': {**scores(ideal, features), 'iterations': ideal_its, 'last_change': ideal_change},
    }))


if __name__ == '__main__':
    main(sys.argv[1])
