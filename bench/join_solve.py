#!/usr/bin/env python3
"""Join `nodal bench` and anchors' solve_bench.py JSON lines into one markdown table.

  python3 bench/join_solve.py FILE.jsonl [FILE.jsonl ...]

Reads every JSON line in the given files (other lines are ignored):
  nodal:       {"tool": "nodal", "dtype": "float32", "dim", "hidden", "batch", "median_ms", "nfe"}
  anchors:     {"kind": "result", "backend": "torchdiffeq"|"diffrax", "solver": "dopri5", "dtype": "f32", ...}
Joins on (dtype, dim, hidden, batch); only diffrax's dopri5 rows are used (Tsit5 rows are skipped).
Standard library only.
"""
import json
import sys

DT = {"f32": "f32", "float32": "f32", "f64": "f64", "float64": "f64"}


def load(paths):
    rows = {}
    for path in paths:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if r.get("tool") == "nodal":
                    tool = "nodal"
                elif r.get("kind") == "result" and r.get("backend") in ("torchdiffeq", "diffrax"):
                    if r.get("solver") != "dopri5":
                        continue
                    tool = r["backend"]
                else:
                    continue
                key = (DT[r["dtype"]], int(r["dim"]), int(r["hidden"]), int(r["batch"]))
                rows.setdefault(key, {})[tool] = (float(r["median_ms"]), r.get("nfe"))
    return rows


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 1 else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def main():
    rows = load(sys.argv[1:])
    print("| config (dtype, dim, hidden, batch) | nodal ms | diffrax ms | torchdiffeq ms "
          "| nodal/diffrax | nodal/torchdiffeq | NFE nodal / diffrax / torchdiffeq |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for key in sorted(rows):
        r = rows[key]
        ms = {t: r[t][0] if t in r else None for t in ("nodal", "diffrax", "torchdiffeq")}
        nfe = {t: r[t][1] if t in r and r[t][1] is not None else "-" for t in ("nodal", "diffrax", "torchdiffeq")}
        ratio = lambda a, b: f"{a / b:.3g}" if a is not None and b else "-"
        print(f"| {key[0]}, {key[1]}, {key[2]}, {key[3]} | {fmt_ms(ms['nodal'])} | {fmt_ms(ms['diffrax'])} "
              f"| {fmt_ms(ms['torchdiffeq'])} | {ratio(ms['nodal'], ms['diffrax'])} "
              f"| {ratio(ms['nodal'], ms['torchdiffeq'])} | {nfe['nodal']} / {nfe['diffrax']} / {nfe['torchdiffeq']} |")


if __name__ == "__main__":
    main()
