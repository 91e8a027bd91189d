"""PyTorch CPU measuring stick for bench/leakage.bench.ts (never a runtime dependency).

Reads a JSON written by the TS bench: ConvNetBN weights in tfjs layout, victim images/labels, the batch size
and attack settings (ig, dlg, or multistep: K plain-SGD steps at local_learning_rate on each batch); runs the
same attack on the same model and images with the true labels; prints one JSON line with PSNRs (per true
image, matched to the most similar reconstruction of its batch) and iterations per second. Run with a Python
that has torch (e.g. ~/.cache/fl-secflow/bench-venv/bin/python3).
"""
import json
import os
import sys
import time

# OpenMP workers that wait by spinning (libgomp's default) starve each other when other jobs hold the cores:
# on the shared 2-core machine, at load average ~4.5, IG ran at 2.5 it/s with two spinning threads against
# 45 it/s with OMP_WAIT_POLICY=PASSIVE (and 44-70 it/s on one thread). TensorFlow's thread pool does not spin
# like that, so the comparison would measure the scheduler, not the attack. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# At most one intra-op thread per core, as many as tfjs-node's TensorFlow uses here (2 on this machine).
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
# TensorFlow flushes subnormal floats to zero; PyTorch CPU does not by default, and late in IG (tiny steps
# after the learning-rate decay) subnormals made it ~50x slower here. Compare like with like.
torch.set_flush_denormal(True)


def load(path):
    spec = json.load(open(path))
    w = {t["name"]: torch.tensor(np.array(t["values"], dtype=np.float32).reshape(t["shape"])) for t in spec["weights"]}
    return spec, w


def forward(w, x, mode, trainable):
    # x: N,H,W,C (tfjs layout) -> N,C,H,W
    h = x.permute(0, 3, 1, 2)
    for b in range(3):
        k = trainable[f"conv{b}/kernel"].permute(3, 2, 0, 1)  # kh,kw,in,out -> out,in,kh,kw
        h = F.conv2d(h, k, padding=1)
        h = F.batch_norm(h, w[f"bn{b}/moving_mean"], w[f"bn{b}/moving_variance"], trainable[f"bn{b}/gamma"],
                         trainable[f"bn{b}/beta"], training=(mode == "train"), eps=1e-3)
        h = F.relu(h)
    h = F.max_pool2d(h, 3, 3)
    h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # flatten in HWC order, as tfjs
    return h @ trainable["classifier/kernel"] + trainable["classifier/bias"]


TRAINABLE = []
for b in range(3):
    TRAINABLE += [f"conv{b}/kernel", f"bn{b}/gamma", f"bn{b}/beta"]
TRAINABLE += ["classifier/kernel", "classifier/bias"]


def grads(w, x, y, mode, create_graph):
    tr = {n: w[n].clone().requires_grad_(True) for n in TRAINABLE}
    loss = F.cross_entropy(forward(w, x, mode, tr), y)
    return torch.autograd.grad(loss, [tr[n] for n in TRAINABLE], create_graph=create_graph)


def tv(x):
    return (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean() + (x[:, 1:, :, :] - x[:, :-1, :, :]).abs().mean()


def psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse == 0 else min(100.0, 10 * np.log10(1 / mse))


def update(w, x, y, cfg, create_graph):
    """w_K - w_0 after K full-batch plain-SGD steps at rate local_learning_rate (the multi-step FedAvg setting)."""
    w0 = [w[n] for n in TRAINABLE]
    params = [t.clone().requires_grad_(True) for t in w0]
    for _ in range(cfg["local_steps"]):
        loss = F.cross_entropy(forward(w, x, cfg["mode"], dict(zip(TRAINABLE, params))), y)
        g = torch.autograd.grad(loss, params, create_graph=create_graph)
        params = [p - cfg["local_learning_rate"] * gi for p, gi in zip(params, g)]
        if not create_graph:
            params = [p.detach().requires_grad_(True) for p in params]
    return [p - p0 for p, p0 in zip(params, w0)]


def observe(w, x, y, cfg, create_graph):
    """What the attacker matches: the gradient (ig, dlg) or the K-step update (multistep)."""
    if cfg["name"] == "multistep":
        return update(w, x, y, cfg, create_graph)
    return grads(w, x, y, cfg["mode"], create_graph)


def ig(w, target, y, shape, cfg, seed):
    """Inverting Gradients, and the multi-step attack (the same loop on the simulated update)."""
    torch.manual_seed(seed)
    x = torch.rand(shape, requires_grad=True)
    opt = torch.optim.Adam([x], lr=cfg["learning_rate"])
    its = cfg["iterations"]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[its // 2.667, its // 1.6, its // 1.142], gamma=0.1)
    start = time.perf_counter()
    for _ in range(its):
        opt.zero_grad()
        g = observe(w, x, y, cfg, True)
        dot = sum((a * b).sum() for a, b in zip(g, target))
        na = torch.sqrt(sum((a * a).sum() for a in g))
        nb = torch.sqrt(sum((b * b).sum() for b in target))
        loss = 1 - dot / (na * nb) + cfg["tv_weight"] * tv(x)
        x.grad, = torch.autograd.grad(loss, [x])
        x.grad.sign_()
        opt.step()
        sched.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach(), time.perf_counter() - start


def dlg(w, target, y, shape, cfg, seed):
    torch.manual_seed(seed)
    x = torch.rand(shape, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1, history_size=100, max_iter=20)
    start = time.perf_counter()

    def closure():
        opt.zero_grad()
        g = grads(w, x, y, cfg["mode"], True)
        loss = sum(((a - b) ** 2).sum() for a, b in zip(g, target))
        loss.backward()
        return loss

    for _ in range(max(1, cfg["iterations"] // 20)):
        opt.step(closure)
    return x.detach().clamp(0, 1), time.perf_counter() - start


def matched_psnr(recon, truth):
    """PSNR per true image, each paired greedily with the reconstruction most like it (batches come back unordered)."""
    pairs = sorted(((psnr(r, t), i, j) for i, t in enumerate(truth) for j, r in enumerate(recon)), reverse=True)
    scores, used_t, used_r = [None] * len(truth), set(), set()
    for q, i, j in pairs:
        if i in used_t or j in used_r:
            continue
        used_t.add(i)
        used_r.add(j)
        scores[i] = q
    return scores


def main():
    spec, w = load(sys.argv[1])
    cfg = spec["attack"]
    hw = spec["image_shape"]
    batch = spec.get("batch", 1)
    out, seconds = [], 0.0
    for start in range(0, len(spec["images"]) - batch + 1, batch):
        x_true = torch.tensor(np.array(spec["images"][start:start + batch], dtype=np.float32).reshape([batch] + hw))
        y = torch.tensor(spec["labels"][start:start + batch])
        target = [g.detach() for g in observe(w, x_true, y, cfg, False)]
        run = dlg if cfg["name"] == "dlg" else ig
        x, s = run(w, target, y, [batch] + hw, cfg, cfg["seed"] + start)
        seconds += s
        out += matched_psnr(list(x.numpy()), list(x_true.numpy()))
    print(json.dumps({"attack": cfg["name"], "psnr": out, "seconds": seconds,
                      "iterations_per_second": cfg["iterations"] * (len(out) // batch) / seconds, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
