#!/usr/bin/env python3
"""Times the seed notebook's numpy recipes on this machine, for comparing with `inrlab bench`.

The reference table (tests/data/chelsea_128.json) was measured on another machine; this script
measures the same recipes here, so speed-ups are quoted against the same hardware.
Needs numpy (pip install numpy). Usage: python3 scripts/numpy_baseline.py [--json] [size ...]
With --json it prints one JSON object instead of the table: `inrlab bench` runs this script (it is
built into the binary) and quotes its suite's speed against these seconds.
"""
import json
import sys
import time

import numpy as np


def ridge(H, y, lamb=1e-6):
    return np.linalg.solve(H.T @ H + lamb * np.eye(H.shape[1]), H.T @ y)


def psnr(pred, Y):
    return -10 * np.log10(np.mean((np.clip(pred, 0, 1) - Y) ** 2))


def reservoir(d, hid, rho, seed):
    np.random.seed(seed)
    W_in = np.random.randn(d, hid) * 0.5
    W_hh = np.random.randn(hid, hid)
    W_hh *= rho / np.abs(np.linalg.eigvals(W_hh)).max()
    return W_in, W_hh, np.random.randn(hid) * 0.1


def trajectory(X, Y, hid=256, K=10):
    W_in, W_hh, b = reservoir(2, hid, 0.95, 42)
    H = np.zeros((len(X), hid))
    states, out = [], []
    for _ in range(K):
        H = np.tanh(X @ W_in + H @ W_hh + b)
        states.append(H.copy())
        out.append(psnr(H @ ridge(H, Y), Y))
    return states, out


def cumulative(X, Y):
    states, _ = trajectory(X, Y)
    out = []
    for k in [1, 2, 3, 5, 10]:
        Hc = np.hstack(states[:k])
        out.append(psnr(Hc @ ridge(Hc, Y), Y))
    return out


def refine(X, Y, hid=256, iters=10):
    W_in, W_hh, b = reservoir(5, hid, 0.9, 42)
    est = np.zeros_like(Y)
    h = np.zeros((len(X), hid))
    out = []
    for _ in range(iters):
        h = np.tanh(np.hstack([X, est]) @ W_in + h @ W_hh + b)
        est = np.clip(h @ ridge(h, Y), 0, 1)
        out.append(psnr(est, Y))
    return out


def multiscale(X, Y, hid=256, S=5):
    cum = np.zeros_like(Y)
    out = []
    for s, rho in enumerate(np.linspace(0.5, 0.99, S)):
        W_in, W_hh, b = reservoir(2, hid, rho, 42 + s)
        h = np.zeros((len(X), hid))
        for _ in range(5):
            h = np.tanh(X @ W_in + h @ W_hh + b)
        cum = np.clip(cum + h @ ridge(h, Y - cum), 0, 1)
        out.append(psnr(cum, Y))
    return out


def fourier_ridge(X, Y):
    np.random.seed(42)
    B = np.random.randn(256, 2) * 10
    P = (2 * np.pi * X) @ B.T
    F = np.concatenate([np.sin(P), np.cos(P)], axis=-1)
    return [psnr(F @ ridge(F, Y), Y)]


def main():
    args = sys.argv[1:]
    as_json = "--json" in args
    sizes = [int(s) for s in args if s != "--json"] or [128]
    say = (lambda *a: None) if as_json else print
    suites = {}
    for size in sizes:
        # A smooth synthetic target: timings do not depend on the pixels.
        c = np.linspace(0, 1, size, endpoint=False)
        X = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
        Y = np.stack([np.sin(7 * X[:, 0]) ** 2, X[:, 1], X[:, 0] * X[:, 1]], -1)
        total = 0.0
        suites[str(size)] = {}
        say(f"numpy at {size}x{size}")
        for name, fn in [("trajectory", lambda: trajectory(X, Y)[1]), ("cumulative", lambda: cumulative(X, Y)),
                         ("refine", lambda: refine(X, Y)), ("multiscale", lambda: multiscale(X, Y)),
                         ("fourier-ridge", lambda: fourier_ridge(X, Y))]:
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            total += dt
            suites[str(size)][name] = dt
            say(f"  {name:<14} {dt:7.3f} s")
        say(f"  {'all':<14} {total:7.3f} s")
    n, h = 16384, 256
    A32 = np.random.rand(n, h).astype(np.float32)
    W32 = np.random.rand(h, h).astype(np.float32)
    A64 = A32.astype(np.float64)
    operations = []
    for label, fn, flops in [("f32 16384x256 @ 256x256", lambda: A32 @ W32, 2 * n * h * h),
                             ("f64 H.T @ H (16384x256)", lambda: A64.T @ A64, 2 * n * h * h),
                             ("f64 reservoir step", lambda: np.tanh(A64[:, :2] @ W32[:2].astype(np.float64) + A64 @ W32.astype(np.float64) + 0.1), 2 * n * h * h)]:
        fn()
        best = min(timeit(fn) for _ in range(5))
        operations.append({"label": label, "ms": best * 1e3, "gflops": flops / best / 1e9})
        say(f"{label:<28} {best * 1e3:8.2f} ms  {flops / best / 1e9:7.1f} GFLOP/s")
    if as_json:
        print(json.dumps({"numpy": np.__version__, "suites": suites, "operations": operations}))


def timeit(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
