#!/usr/bin/env python3
"""Tables from bench/cnf_side_by_side.sh: ms/iter and ms per forward evaluation, nodal against
the torchdiffeq anchor in the same run (medians over the repeats)."""
import glob, json, os, statistics, sys

root = sys.argv[1] if len(sys.argv) > 1 else "runs/cnf-bench"


def anchor(path):
    last = [json.loads(l) for l in open(path) if l.strip()][-1]
    return last["median_ms_per_iter"], last["mean_nfe_forward"]


def nodal(path):
    s = json.load(open(os.path.join(path, "summary.json")))
    m = [json.loads(l) for l in open(os.path.join(path, "metrics.jsonl"))]
    return s["median_ms_per_iter"], statistics.mean(r["nfe_forward"] for r in m)


rows = []
for data in ["8gaussians", "moons"]:
    for trace in ["exact", "hutch"]:
        a = [anchor(p) for p in sorted(glob.glob(f"{root}/anchor_{data}_{trace}_*.jsonl"))]
        if not a:
            continue
        am, an = statistics.median(x[0] for x in a), statistics.median(x[1] for x in a)
        line = [f"{data} {trace}", f"{am:.1f} ({an:.0f})"]
        per_a = am / an
        for eng in ["fused1", "fused2", "module1"]:
            n = [nodal(p) for p in sorted(glob.glob(f"{root}/nodal_{eng}_{data}_{trace}_*"))]
            if not n:
                line.append("-")
                continue
            nm, nn = statistics.median(x[0] for x in n), statistics.median(x[1] for x in n)
            line.append(f"{nm:.1f} ({nn:.0f}): {nm / am:.2f}x, per NFE {(nm / nn) / per_a:.2f}x")
        rows.append(line)
print("| toy, trace | torchdiffeq ms/iter (mean fwd NFE) | nodal fused, 1 thread | nodal fused, 2 threads | nodal burn module, 1 thread |")
print("|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
