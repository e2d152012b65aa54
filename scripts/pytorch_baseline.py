"""Times the Fourier-MLP training step of seed 002 in PyTorch on this machine's CPU, 2 threads.

The recipe of ../shared/reference/chelsea_128.json ("fourier_mlp_recipe"): features
[sin 2πxB, cos 2πxB] (256, precomputed), MLP 256-128-256-3 with ReLU and a sigmoid output, MSE,
full batch, Adam 1e-3 or SGD 1.0 momentum 0.9. Prints the median ms per step at 128² and 224², so
`inrlab bench` figures can be compared with PyTorch on the same machine.
Dev-only: `python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch`, then
`/tmp/torchenv/bin/python scripts/pytorch_baseline.py`.
"""

import math
import statistics
import time

import torch
from torch import nn

torch.set_num_threads(2)


def time_steps(size, optimizer_name, warmup=10, timed=60):
    torch.manual_seed(0)
    axis = torch.arange(size, dtype=torch.float32) / size
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
    frequencies = torch.randn(2, 128) * 10
    projected = 2 * math.pi * coords @ frequencies
    features = torch.cat([torch.sin(projected), torch.cos(projected)], dim=1)
    target = torch.rand(size * size, 3)
    model = nn.Sequential(
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 3), nn.Sigmoid()
    )
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    loss_fn = nn.MSELoss()
    times = []
    for step in range(warmup + timed):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(model(features), target)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for size in (128, 224):
        for name in ("adam", "sgd"):
            print(f"{size}²  {name:4}  {time_steps(size, name):7.2f} ms/step (median)")
