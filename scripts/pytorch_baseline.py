"""Times the Fourier-MLP training step of seed 002 in PyTorch, on this machine's CPU or a CUDA GPU.

The recipe of ../shared/reference/chelsea_128.json ("fourier_mlp_recipe"): features
[sin 2πxB, cos 2πxB] (256, precomputed), MLP 256-128-256-3 with ReLU and a sigmoid output, MSE,
full batch, Adam 1e-3 or SGD 1.0 momentum 0.9. Prints the median ms per step at each size, so
`inrlab bench` figures can be compared with PyTorch on the same machine:

    python3 scripts/pytorch_baseline.py                      # CPU, 2 threads, 128² 224² 512²
    python3 scripts/pytorch_baseline.py --device cuda        # the same steps on the GPU (eager)

On CUDA each step is timed by CUDA events around it (GPU time) and by the wall clock with a
synchronize at its end; both are printed. With --json it prints one JSON object instead:
`inrlab bench` runs this script (it is built into the binary) beside its own training steps. Dev-only: `python3 -m venv /tmp/torchenv &&
/tmp/torchenv/bin/pip install torch`, then `/tmp/torchenv/bin/python scripts/pytorch_baseline.py`.
"""

import argparse
import json
import math
import statistics
import time

import torch
from torch import nn


def time_steps(size, optimizer_name, device, warmup=10, timed=60):
    torch.manual_seed(0)
    axis = torch.arange(size, dtype=torch.float32) / size
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
    frequencies = torch.randn(2, 128) * 10
    projected = 2 * math.pi * coords @ frequencies
    features = torch.cat([torch.sin(projected), torch.cos(projected)], dim=1).to(device)
    target = torch.rand(size * size, 3).to(device)
    model = nn.Sequential(
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 3), nn.Sigmoid()
    ).to(device)
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    loss_fn = nn.MSELoss()
    cuda = device.type == "cuda"
    wall, gpu = [], []
    for step in range(warmup + timed):
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            begin.record()
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(model(features), target)
        loss.backward()
        optimizer.step()
        if cuda:
            end.record()
            torch.cuda.synchronize()
        if step >= warmup:
            wall.append((time.perf_counter() - start) * 1e3)
            if cuda:
                gpu.append(begin.elapsed_time(end))
    return statistics.median(wall), (statistics.median(gpu) if gpu else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--sizes", default="128,224,512", help="working sizes, comma-separated")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (CPU device only)")
    parser.add_argument("--optimizers", default="adam,sgd")
    parser.add_argument("--timed", type=int, default=60, help="timed steps per case (median)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args()
    say = (lambda *a, **k: None) if args.json else print
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
        where = f"cpu, threads {torch.get_num_threads()}"
    else:
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: this PyTorch build sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False  # f32 products, as inrlab's kernels
        where = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}, eager, tf32 off"
    say(f"torch {torch.__version__}, {where}")
    steps = []
    for size in (int(s) for s in args.sizes.split(",")):
        for name in args.optimizers.split(","):
            wall, gpu = time_steps(size, name, device, warmup=args.warmup, timed=args.timed)
            steps.append({"size": size, "optimizer": name, "wall_ms": wall, "gpu_ms": gpu})
            line = f"{size}²  {name:4}  {wall:8.3f} ms/step (median wall clock)"
            if gpu is not None:
                line += f"  {gpu:8.3f} ms GPU (CUDA events)"
            say(line, flush=True)
    if args.json:
        print(json.dumps({"torch": torch.__version__, "where": where, "steps": steps}))


if __name__ == "__main__":
    main()
