"""Per-op timings of the MNIST models' layers in PyTorch, the anchor for
crates/nodal-experiments/examples/op_bench.rs (same ops, shapes, modes and statistics).

Usage: python bench/op_bench_torch.py [--batch B] [--repeats R] [--threads T]
Prints one JSON object per (op, mode): {"side", "op", "mode", "ms", "gflops", "shape"}.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def conv(cin, cout, k, stride, pad, bias):
    return nn.Conv2d(cin, cout, k, stride, pad, bias=bias)


OPS = [
    ("conv_stem_1to64_k3_28", (1, 28, 28), lambda: conv(1, 64, 3, 1, 0, True), 26 * 26 * 64 * 9),
    ("conv_down_64_k4s2_26", (64, 26, 26), lambda: conv(64, 64, 4, 2, 1, True), 13 * 13 * 64 * 64 * 16),
    ("conv_down_64_k4s2_13", (64, 13, 13), lambda: conv(64, 64, 4, 2, 1, True), 6 * 6 * 64 * 64 * 16),
    ("conv_block_64_k3_6", (64, 6, 6), lambda: conv(64, 64, 3, 1, 1, False), 6 * 6 * 64 * 64 * 9),
    ("conv_ode_65to64_k3_6", (65, 6, 6), lambda: conv(65, 64, 3, 1, 1, True), 6 * 6 * 65 * 64 * 9),
    ("group_norm_64_26", (64, 26, 26), lambda: nn.GroupNorm(32, 64), 0),
    ("group_norm_64_6", (64, 6, 6), lambda: nn.GroupNorm(32, 64), 0),
]


def timed(repeats, f):
    for _ in range(3):
        f()
    out = []
    for _ in range(repeats):
        s = time.perf_counter()
        f()
        out.append((time.perf_counter() - s) * 1e3)
    out.sort()
    return out[len(out) // 2]


def report(op, mode, ms, flops, shape):
    gflops = flops / ms / 1e6 if flops > 0 else 0.0
    print(json.dumps({"side": "torch", "op": op, "mode": mode, "ms": ms, "gflops": gflops, "shape": shape}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    for name, chw, build, macs in OPS:
        if a.only and a.only not in name:
            continue
        shape = [a.batch, *chw]
        flops = 2.0 * macs * a.batch
        layer = build()
        x = torch.randn(shape)
        with torch.no_grad():
            report(name, "fwd", timed(a.repeats, lambda: layer(x)), flops, shape)
        xg = torch.randn(shape, requires_grad=True)
        g = torch.randn(layer(xg).shape)

        def step():
            layer.zero_grad(set_to_none=True)
            xg.grad = None
            (layer(xg) * g).sum().backward()

        report(name, "fwd_bwd", timed(a.repeats, step), 3.0 * flops, shape)


if __name__ == "__main__":
    main()
