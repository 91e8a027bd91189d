"""PyTorch CPU reference for the training-throughput bench: the same ConvNetBN, batch and optimizer as the
tfjs envoy, on the same PneumoniaMNIST images. A measuring stick only, never a runtime dependency.
usage: python torch_train.py NPZ WIDTH BATCH STEPS THREADS  -> one JSON line"""
import json
import sys
import time

import numpy as np
import torch
from torch import nn

path, width, batch, steps, threads = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
data = np.load(path)
x_all = torch.tensor(data["train_images"][: batch * 8], dtype=torch.float32).unsqueeze(1) / 255
y_all = torch.tensor(data["train_labels"][: batch * 8, 0], dtype=torch.long)


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


side = x_all.shape[-1] // 3
model = nn.Sequential(*block(1, width), *block(width, 2 * width), *block(2 * width, 2 * width),
                      nn.MaxPool2d(3), nn.Flatten(), nn.Linear(2 * width * side * side, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()


def step(i):
    s = (i % 8) * batch
    opt.zero_grad()
    loss = loss_fn(model(x_all[s:s + batch]), y_all[s:s + batch])
    loss.backward()
    opt.step()
    return loss.item()


for i in range(3):
    step(i)  # warm-up
start = time.perf_counter()
for i in range(steps):
    step(i)
seconds = time.perf_counter() - start
print(json.dumps({"images_per_second": steps * batch / seconds, "seconds": seconds, "torch": torch.__version__, "threads": threads}))
