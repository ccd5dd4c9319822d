#!/usr/bin/env python3
"""Markdown table from bench/memory.sh's raw JSON lines (standard library only).

  python3 bench/join_memory.py NODAL.jsonl ANCHORS_MEMORY.jsonl

Peak = /usr/bin/time -v "Maximum resident set size" of the whole process.
nodal: delta = peak - peak of the forward-only run (no --grad) with the same N.
torchdiffeq (memory.py): delta = its own delta_peak_mib = ru_maxrss - VmRSS after imports,
weights and a warm-up f evaluation (there is no forward-only torchdiffeq run).
Per-step growth: delta / N, and the slope (delta(N2) - delta(N1)) / (N2 - N1) between
consecutive N.
"""
import json
import sys


def jl(path):
    with open(path) as fh:
        return [json.loads(l) for l in fh if l.strip().startswith("{")]


def main():
    nodal = jl(sys.argv[1])
    anchors = [r for r in jl(sys.argv[2]) if r.get("kind") == "result"]
    errors = [r for r in jl(sys.argv[2]) if r.get("kind") == "error"]
    base = {r["steps"]: r["time_v_max_rss_mib"] for r in nodal if r["grad"] == "none"}
    rows = []  # (tool, method, N, peak, delta, nfe_f, nfe_b, seconds)
    for r in nodal:
        s, b = r.get("stats") or {}, r.get("backward_stats") or {}
        sec = (r.get("seconds") or 0) + (r.get("backward_seconds") or 0)
        nb = f"{b.get('nfe', 0)}+{b.get('nvjp', 0)}vjp" if b else "-"
        rows.append(("nodal", r["grad"] if r["grad"] != "none" else "forward only (no --grad)", r["steps"],
                     r["time_v_max_rss_mib"], r["time_v_max_rss_mib"] - base[r["steps"]],
                     s.get("nfe"), nb, sec))
    for r in anchors:
        rows.append(("torchdiffeq", r["method"], r["steps"], r.get("time_v_max_rss_mib", r["peak_rss_mib"]),
                     r["delta_peak_mib"], r["nfe_forward"], r["nfe_backward"], r["step_seconds"]))
    # slopes per (tool, method)
    slope = {}
    groups = {}
    for row in rows:
        groups.setdefault((row[0], row[1]), []).append(row)
    for key, g in groups.items():
        g.sort(key=lambda x: x[2])
        for a, b in zip(g, g[1:]):
            slope[(key, b[2])] = (b[4] - a[4]) / (b[2] - a[2])
    print("| tool | grad | N rk4 steps | peak RSS MiB | delta MiB | delta/N MiB | slope vs previous N MiB/step "
          "| NFE fwd / bwd | solve+grad s |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for key, g in groups.items():
        for row in g:
            sl = slope.get((key, row[2]))
            print(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]:.1f} | {row[4]:+.1f} | {row[4] / row[2]:.3f} "
                  f"| {'-' if sl is None else f'{sl:.3f}'} | {row[5]} / {row[6]} | {row[7]:.2f} |")
    for e in errors:
        print(f"\nERROR torchdiffeq {e.get('method')} N={e.get('steps')}: rc {e.get('rc')}")


if __name__ == "__main__":
    main()
