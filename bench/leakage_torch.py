"""PyTorch CPU measuring stick for bench/leakage.bench.ts (never a runtime dependency).

Reads a JSON written by the TS bench: ConvNetBN weights in tfjs layout, victim images/labels and attack
settings; runs the same attacks on the same model and images; prints one JSON line with PSNRs and
iterations per second. Run with a Python that has torch (e.g. ~/.cache/fl-secflow/bench-venv/bin/python3).
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# One intra-op thread per core: on a shared 2-core machine more threads spin against each other (measured:
# a 4-image run took >15 min of CPU under load instead of ~2).
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


def ig(w, target, y, shape, cfg, seed):
    torch.manual_seed(seed)
    x = torch.rand(shape, requires_grad=True)
    opt = torch.optim.Adam([x], lr=cfg["learning_rate"])
    its = cfg["iterations"]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[its // 2.667, its // 1.6, its // 1.142], gamma=0.1)
    start = time.perf_counter()
    for _ in range(its):
        opt.zero_grad()
        g = grads(w, x, y, cfg["mode"], True)
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


def main():
    spec, w = load(sys.argv[1])
    cfg = spec["attack"]
    hw = spec["image_shape"]
    out = []
    for i, (img, label) in enumerate(zip(spec["images"], spec["labels"])):
        x_true = torch.tensor(np.array(img, dtype=np.float32).reshape([1] + hw))
        y = torch.tensor([label])
        target = [g.detach() for g in grads(w, x_true, y, cfg["mode"], False)]
        run = ig if cfg["name"] == "ig" else dlg
        x, seconds = run(w, target, y, [1] + hw, cfg, cfg["seed"] + i)
        out.append({"psnr": psnr(x.numpy(), x_true.numpy()), "seconds": seconds})
    total = sum(o["seconds"] for o in out)
    print(json.dumps({"attack": cfg["name"], "psnr": [o["psnr"] for o in out],
                      "iterations_per_second": cfg["iterations"] * len(out) / total, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
