#!/usr/bin/env python3
"""Markdown table from the raw outputs of bench/spiral_side_by_side.sh.

  python3 bench/join_spiral.py RAW_DIR

Expects RAW_DIR/{torchdiffeq,diffrax}_{direct,adjoint}.jsonl (anchors' JSON lines; torchdiffeq
with --per_iter) and RAW_DIR/nodal_{backprop,adjoint}/{summary.json,metrics.jsonl}.

Columns (computed the same way for every tool where the data allow):
  ms/iter          median wall ms per training iteration (diffrax: compile + first step excluded)
  ms/fwd NFE       median over iterations of ms / forward NFE.  diffrax does not count NFE: its
                   forward NFE is estimated as 1 + 6 * forward steps (block means), marked "~"
  ms/(fwd+bwd NFE) median over iterations of ms / (forward + backward NFE), as each tool counts
                   backward NFE (torchdiffeq direct: 0, autograd replays the graph; nodal
                   backprop: its backward vjp + f evaluations; adjoint: evaluations of the
                   augmented backward solve); "n/a" for diffrax
  NFE fwd / bwd    median per iteration over all iterations, and mean over iterations 901-1000
  loss 901-1000    median training loss over iterations 901-1000
Standard library only.
"""
import json
import os
import sys


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def jl(path):
    out = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def block(lines, lo):
    for r in lines:
        if r.get("kind") == "block" and r.get("iter_from") == lo:
            return r
    return None


def from_iters(its):
    """its: list of dicts with iter, ms, nfe_forward, nfe_backward."""
    win = [r for r in its if 901 <= r["iter"] <= 1000]
    return {
        "ms_fwd": median([r["ms"] / max(r["nfe_forward"], 1) for r in its]),
        "ms_all": median([r["ms"] / max(r["nfe_forward"] + r["nfe_backward"], 1) for r in its]),
        "nfe_f_med": median([r["nfe_forward"] for r in its]),
        "nfe_b_med": median([r["nfe_backward"] for r in its]),
        "nfe_f_win": sum(r["nfe_forward"] for r in win) / len(win) if win else None,
        "nfe_b_win": sum(r["nfe_backward"] for r in win) / len(win) if win else None,
    }


def torch_row(path):
    lines = jl(path)
    s = [r for r in lines if r.get("kind") == "summary"][-1]
    its = [{"iter": r["iter"], "ms": r["ms"], "nfe_forward": r["nfe_forward"],
            "nfe_backward": r["nfe_backward"]} for r in lines if r.get("kind") == "iter"]
    row = {"ms_iter": s["median_ms_per_iter"], "iters": s["iters"], **from_iters(its)}
    b = block(lines, 901)
    row["loss"] = b["median_train_loss"] if b else None
    return row


def diffrax_row(path):
    lines = jl(path)
    s = [r for r in lines if r.get("kind") == "summary"][-1]
    blocks = [r for r in lines if r.get("kind") == "block"]
    # per-block estimate: block median ms / (1 + 6 * block mean forward steps); median over blocks
    est = [b["median_ms_per_iter"] / (1 + 6 * b["mean_fwd_steps"]) for b in blocks]
    b = block(lines, 901)
    return {"ms_iter": s["median_ms_per_iter"], "iters": s["iters"], "ms_fwd": median(est), "approx": True,
            "ms_all": None, "nfe_f_med": s["approx_mean_nfe_forward"], "nfe_f_mean_all": True,
            "nfe_b_med": None, "nfe_f_win": 1 + 6 * b["mean_fwd_steps"] if b else None, "nfe_b_win": None,
            "loss": b["median_train_loss"] if b else None, "compile_s": s["compile_plus_first_step_s"]}


def nodal_row(folder):
    with open(os.path.join(folder, "summary.json")) as fh:
        s = json.load(fh)
    its = jl(os.path.join(folder, "metrics.jsonl"))
    return {"ms_iter": s["median_ms_per_iter"], "iters": s["iters"], **from_iters(its),
            "loss": s.get("median_train_loss_901_1000")}


def f(x, nd=3, approx=False):
    if x is None:
        return "n/a"
    if x >= 100:
        s = f"{x:.0f}"
    elif x >= 1:
        s = f"{x:.{max(nd - 1, 0)}f}" if x < 10 else f"{x:.1f}"
    else:
        s = f"{x:#.{nd}g}"
    return ("~" if approx else "") + s


def main():
    raw = sys.argv[1]
    rows = [
        ("nodal", "backprop", nodal_row(os.path.join(raw, "nodal_backprop"))),
        ("diffrax", "RecursiveCheckpointAdjoint", diffrax_row(os.path.join(raw, "diffrax_direct.jsonl"))),
        ("torchdiffeq", "direct (odeint)", torch_row(os.path.join(raw, "torchdiffeq_direct.jsonl"))),
        ("nodal", "adjoint", nodal_row(os.path.join(raw, "nodal_adjoint"))),
        ("diffrax", "BacksolveAdjoint", diffrax_row(os.path.join(raw, "diffrax_adjoint.jsonl"))),
        ("torchdiffeq", "adjoint (odeint_adjoint)", torch_row(os.path.join(raw, "torchdiffeq_adjoint.jsonl"))),
    ]
    print("| tool | grad | iters | median ms/iter | ms/fwd NFE | ms/(fwd+bwd NFE) | NFE fwd / bwd per iter, median all iters "
          "| NFE fwd / bwd, mean iters 901-1000 | median train loss 901-1000 | nodal/this ms/iter |")
    print("|---|---|---:|---:|---:|---:|---|---|---:|---:|")
    for i, (tool, grad, r) in enumerate(rows):
        nod = rows[0 if i < 3 else 3][2]["ms_iter"]
        ratio = "-" if tool == "nodal" else f"{nod / r['ms_iter']:.3g}"
        nfe_all = f"{f(r['nfe_f_med'], approx=r.get('approx', False))} / {f(r['nfe_b_med'])}"
        if r.get("nfe_f_mean_all"):
            nfe_all += " (fwd: mean)"
        nfe_win = f"{f(r['nfe_f_win'], approx=r.get('approx', False))} / {f(r['nfe_b_win'])}"
        print(f"| {tool} | {grad} | {r['iters']} | {f(r['ms_iter'])} | {f(r['ms_fwd'], approx=r.get('approx', False))} "
              f"| {f(r['ms_all'])} | {nfe_all} | {nfe_win} | {f(r['loss'], 4)} | {ratio} |")
    for tool, grad, r in rows:
        if "compile_s" in r:
            print(f"\ndiffrax {grad}: compile + first step {r['compile_s']:.1f} s (excluded from ms/iter)", end="")
    print()


if __name__ == "__main__":
    main()
