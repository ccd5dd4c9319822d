#!/usr/bin/env python3
"""A scaling model of nodal's data-parallel training over N nodes.

    python3 bench/distributed_scaling.py [ODENET_MS_PER_STEP]

Per step a rank computes its shard's forward and backward (C / N for a global batch whose
one-node step takes C ms, strong scaling; or C for a per-node batch held fixed, weak scaling),
then the gradients go through one all-reduce of S bytes: nodal sends every f32 gradient, one
presence flag per parameter tensor and six per-step sums in one message, not overlapped with the
backward pass. A ring all-reduce moves 2 (N - 1) / N * S bytes in and out of every node, in
2 (N - 1) messages, so its time is

    A(N) = 2 (N - 1) / N * S / bandwidth + 2 (N - 1) * latency,

or, for small messages, recursive doubling (what MPI libraries pick there): ceil(log2 N) rounds
that each send the whole message, ceil(log2 N) * (S / bandwidth + latency). The model takes the
faster of the two. The parallel efficiency is E = compute / (compute + A). The latency is taken as 20 us per
message (TCP on a LAN; RDMA fabrics are ~2 us, which only matters for the small models).

Compute per step C: the ODE-Net's is measured on this machine (bench/results/
distributed_throughput.jsonl, one process, 2 threads, batch 128, or the argument); the CNFs'
come from docs/cnf.md (toy: fused engine, 2 threads, batch 512; MNIST CNF: batch 64).
"""
import json
import math
import os
import statistics
import sys

LATENCY_S = 20e-6


def odenet_ms():
    if len(sys.argv) > 1:
        return float(sys.argv[1])
    path = os.path.join(os.path.dirname(__file__), "results", "distributed_throughput.jsonl")
    rows = [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
    rows = [r for r in rows if r["model"] == "odenet" and r["processes"] == 1]
    return statistics.median(r["ms_per_step"] for r in rows) if rows else 1717.0


MODELS = [
    # name, parameters, parameter tensors, compute ms per step on one node, batch
    ("MNIST ODE-Net", 208_266, 50, odenet_ms(), 128),
    ("CNF, 2-D toy (MLP 3-64-64-64-2)", 8_706, 8, 18.3, 512),
    ("CNF, MNIST 14x14 (conv, 16 channels)", 13_281, 6, 3700.0, 64),
]
LINKS = [("1 Gbit/s", 1e9 / 8), ("10 Gbit/s", 10e9 / 8), ("100 Gbit/s", 100e9 / 8)]


def allreduce_ms(nodes, nbytes, bandwidth):
    if nodes == 1:
        return 0.0
    ring = 2 * (nodes - 1) / nodes * nbytes / bandwidth + 2 * (nodes - 1) * LATENCY_S
    rounds = math.ceil(math.log2(nodes))
    doubling = rounds * (nbytes / bandwidth + LATENCY_S)
    return min(ring, doubling) * 1e3


def main():
    print("| model | bytes per all-reduce | compute ms / step (1 node) | link | all-reduce ms, N = 2 / 10 / 100 | weak-scaling efficiency, N = 2 / 10 / 100 | strong-scaling speed-up, N = 2 / 10 / 100 |")
    print("|---|---:|---:|---|---|---|---|")
    for name, params, tensors, c_ms, batch in MODELS:
        nbytes = 4 * (params + tensors + 6)
        for link, bw in LINKS:
            a = [allreduce_ms(n, nbytes, bw) for n in (2, 10, 100)]
            weak = [c_ms / (c_ms + x) for x in a]
            # Strong scaling divides the global batch: below 8 rows a shard no longer divides the
            # compute (per-call overheads stay), so those cells are left out.
            strong = [c_ms / (c_ms / n + x) if batch / n >= 8 else None for n, x in zip((2, 10, 100), a)]
            print(
                f"| {name} | {nbytes / 1e6:.3f} MB | {c_ms:.1f} (batch {batch}) | {link} | "
                + " / ".join(f"{x:.2f}" for x in a)
                + " | "
                + " / ".join(f"{100 * e:.0f}%" for e in weak)
                + " | "
                + " / ".join("-" if s is None else f"{s:.1f}x" for s in strong)
                + " |"
            )


if __name__ == "__main__":
    main()
