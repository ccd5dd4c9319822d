"""Join the summaries of bench/latent_ode_table.sh into a markdown table: held-out
interpolation and extrapolation MSE per data set, keep-rate and model (mean ± sample standard
deviation over the seeds), with the median seconds per epoch.

    python3 bench/join_latent_ode.py runs/latent-ode-table
"""
import json
import math
import os
import sys
from collections import defaultdict


def stats(v):
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runs/latent-ode-table"
    rows = defaultdict(list)
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name, "summary.json")
        if os.path.exists(p):
            s = json.load(open(p))
            rows[(s["data"], s["keep"], s["model"])].append(s)
    print("| data | keep | model | params | interp MSE | extrap MSE | s/epoch | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for data in ["periodic", "pendulum"]:
        for keep in [0.1, 0.3, 0.5]:
            for model in ["latent-ode", "ode-rnn", "gru"]:
                r = rows.get((data, keep, model))
                if not r:
                    continue
                mi, si = stats([x["interp_mse"] for x in r])
                me, se = stats([x["extrap_mse"] for x in r])
                sec = sorted(x["median_epoch_seconds"] for x in r)[len(r) // 2]
                print(f"| {data} | {keep} | {model} | {r[0]['params']} | {mi:.4f} ± {si:.4f} | {me:.4f} ± {se:.4f} | {sec:.2f} | {len(r)} |")


if __name__ == "__main__":
    main()
