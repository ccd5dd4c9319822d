#!/usr/bin/env python3
"""Per-sample vs joint batch solving: nodal (joint, per_sample) side by side with diffrax
(jax.vmap over rows of a single-row diffeqsolve, and the batch as one joint ODE).

Problem: the shared d2/h64 MLP f(y) = W2 tanh(W1 y + b1) + b2 (../shared/reference/mlp_d2_h64.json),
batch = first B rows of mlp_y0_d2.json, row i scaled by s_i, s log-uniform over 10^lo..10^hi, so
rows need very different numbers of steps. t = [0, 10], dopri5, rtol 1e-6, atol 1e-8, float64.

For every repeat (interleaved, order rotated each repeat) it runs:
  nodal joint        `nodal solve` subprocess, batch_mode "joint"; time = its "seconds" field
  nodal per_sample   `nodal solve` subprocess, batch_mode "per_sample"; time = "seconds"
  diffrax vmap       jit(vmap(single-row diffeqsolve)); compiled once, timed call + block_until_ready
  diffrax joint      jit(diffeqsolve on the (B, 2) batch), one shared step size (RMS over batch)
and reports medians. Row-evaluations (vector-field evaluations of a single row, summed):
  nodal              its own stats.row_evaluations
  diffrax            estimate B * (1 + 6 * max_rows num_steps) for vmap (a vmapped while loop runs
                     every row until the slowest finishes), B * (1 + 6 * num_steps) for joint;
                     1 = first-stage evaluation of the first step (Dopri5 is FSAL, 6 new stages per
                     step after that). diffrax 0.7.2 does not run its initial-step selection here
                     (dt0=None but the term is wrapped, so `_select_initial_step` returns 0.01
                     without evaluating f). The estimate is checked against a count made by a
                     jax.debug.callback inside the vector field (separate, un-timed build).

Usage (from anywhere; it cd's to the repository root, paths relative to it):
  ANCHORS_PY=/path/to/venv/bin/python NODAL=target/release/nodal \
      python3 bench/per_sample_side_by_side.py [--repeats 31] [--scales=-2:1,-1:3] [--batches 64]
          [--out FILE]

Environment: ANCHORS_PY (python with jax + diffrax; the script re-executes itself with it),
NODAL (default target/release/nodal), SHARED (default ../shared), RAW_DIR (keep problem files and
raw JSON lines there; default a temp dir).
"""
import os
import sys

# Re-execute under ANCHORS_PY (a python that has jax + diffrax) once.
if os.environ.get("ANCHORS_PY") and not os.environ.get("_PER_SAMPLE_BENCH_REEXEC"):
    os.environ["_PER_SAMPLE_BENCH_REEXEC"] = "1"
    os.execv(os.environ["ANCHORS_PY"], [os.environ["ANCHORS_PY"], os.path.abspath(__file__)] + sys.argv[1:])

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.chdir(REPO)
SHARED = os.environ.get("SHARED", "../shared")
NODAL = os.environ.get("NODAL", "target/release/nodal")
os.environ.setdefault("ANCHORS_DATA", os.path.join(SHARED, "reference"))
sys.path.insert(0, os.path.join(SHARED, "anchors"))
import anchors_common as ac  # noqa: E402  (first: pins threads before jax is imported)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import diffrax  # noqa: E402

T0, T1 = 0.0, 10.0
RTOL, ATOL = 1e-6, 1e-8
MAX_STEPS = 100000


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def loadavg1():
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


# ----------------------------------------------------------------------------- nodal
def nodal_problem(w, y0, mode):
    return {"dtype": "float64", "t": [T0, T1], "solver": "dopri5", "rtol": RTOL, "atol": ATOL,
            "max_steps": MAX_STEPS, "batch_mode": mode,
            "weights": {k: np.asarray(w[k]).tolist() for k in ["W1", "b1", "W2", "b2"]},
            "y0": np.asarray(y0).tolist()}


def run_nodal(path):
    t0 = time.perf_counter()
    r = subprocess.run([NODAL, "solve", path], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"nodal failed ({r.returncode}): {r.stderr[-2000:]}")
    out = json.loads(r.stdout)
    if "error" in out:
        raise RuntimeError(f"nodal error: {out['error']}")
    return out, wall


# ----------------------------------------------------------------------------- diffrax
def vf(t, y, p):
    W1, b1, W2, b2 = p
    return jnp.tanh(y @ W1.T + b1) @ W2.T + b2


_count = {"rows": 0, "calls": 0}


def _bump_call():
    _count["calls"] += 1


def _bump_row(_y):
    # under vmap, debug.callback with a batched argument runs once per row
    _count["rows"] += 1


def vf_counted(t, y, p):
    jax.debug.callback(_bump_call)
    jax.debug.callback(_bump_row, y[..., 0])
    return vf(t, y, p)


def make_solve(field, rtol=RTOL, atol=ATOL):
    def solve(y0, p):
        sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Dopri5(), t0=T0, t1=T1, dt0=None,
                                  y0=y0, args=p,
                                  stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                                  saveat=diffrax.SaveAt(t1=True), max_steps=MAX_STEPS)
        return (sol.ys[-1], sol.stats["num_steps"], sol.stats["num_accepted_steps"],
                sol.stats["num_rejected_steps"])
    return solve


def count_evals(fn, y0, p):
    _count["rows"] = 0
    _count["calls"] = 0
    jax.block_until_ready(jax.jit(fn)(y0, p))
    jax.effects_barrier()
    return dict(_count)


# ----------------------------------------------------------------------------- one config
def run_config(w, y0_base, lo, hi, repeats, raw_dir):
    B = y0_base.shape[0]
    scales = np.logspace(lo, hi, B)
    y0 = y0_base * scales[:, None]
    tag = f"b{B}_s1e{lo:+g}_1e{hi:+g}"
    paths = {}
    for mode in ["joint", "per_sample"]:
        paths[mode] = os.path.join(raw_dir, f"problem_{tag}_{mode}.json")
        with open(paths[mode], "w") as fh:
            json.dump(nodal_problem(w, y0, mode), fh)

    p = tuple(jnp.asarray(w[k], dtype=jnp.float64) for k in ["W1", "b1", "W2", "b2"])
    y0j = jnp.asarray(y0, dtype=jnp.float64)
    row_solve = make_solve(vf)
    fns = {"diffrax vmap": jax.jit(jax.vmap(row_solve, in_axes=(0, None))),
           "diffrax joint": jax.jit(row_solve)}
    compiled, compile_s, first = {}, {}, {}
    for name, fn in fns.items():
        c0 = time.perf_counter()
        compiled[name] = fn.lower(y0j, p).compile()
        compile_s[name] = time.perf_counter() - c0
        first[name] = jax.block_until_ready(compiled[name](y0j, p))  # warm-up, outputs, stats

    # evaluation counts by callback (separate, un-timed builds)
    counted = make_solve(vf_counted)
    cnt = {"diffrax vmap": count_evals(jax.vmap(counted, in_axes=(0, None)), y0j, p),
           "diffrax joint": count_evals(counted, y0j, p)}

    # tight reference (rows solved independently, rtol = atol = 1e-12), un-timed
    ref = np.asarray(jax.block_until_ready(
        jax.jit(jax.vmap(make_solve(vf, 1e-12, 1e-12), in_axes=(0, None)))(y0j, p))[0])

    # nodal warm-up (page cache, first exec) and outputs
    nodal_first = {mode: run_nodal(paths[mode])[0] for mode in ["joint", "per_sample"]}

    # ---- interleaved timing
    modes = ["nodal joint", "nodal per_sample", "diffrax vmap", "diffrax joint"]
    times = {m: [] for m in modes}
    walls = {m: [] for m in modes[:2]}
    loads = []
    up_before = uptime()
    log(f"# {tag}: uptime before: {up_before}")
    raw_fh = open(os.path.join(raw_dir, f"timings_{tag}.jsonl"), "w")
    for rep in range(repeats):
        order = modes[rep % 4:] + modes[:rep % 4]
        loads.append(loadavg1())
        for m in order:
            if m.startswith("nodal"):
                out, wall = run_nodal(paths[m.split()[1]])
                times[m].append(out["seconds"])
                walls[m].append(wall)
                raw_fh.write(json.dumps({"rep": rep, "mode": m, "seconds": out["seconds"],
                                         "wall": wall, "nfe": out["stats"]["nfe"]}) + "\n")
            else:
                t0 = time.perf_counter()
                jax.block_until_ready(compiled[m](y0j, p))
                dt = time.perf_counter() - t0
                times[m].append(dt)
                raw_fh.write(json.dumps({"rep": rep, "mode": m, "seconds": dt}) + "\n")
    raw_fh.close()
    up_after = uptime()
    log(f"# {tag}: uptime after: {up_after}")

    # ---- steps, evaluations, accuracy
    ps = nodal_first["per_sample"]["stats"]
    nodal_row_steps = np.asarray(ps["row_accepted"]) + np.asarray(ps["row_rejected"])
    yv, ns, na, nr = (np.asarray(x) for x in first["diffrax vmap"])
    yj, nsj, naj, nrj = (np.asarray(x) for x in first["diffrax joint"])
    js = nodal_first["joint"]["stats"]
    y_nodal = {mode: np.asarray(nodal_first[mode]["ys"])[-1] for mode in ["joint", "per_sample"]}

    est = {"diffrax vmap": B * (1 + 6 * int(ns.max())), "diffrax joint": B * (1 + 6 * int(nsj))}
    calls = {"nodal joint": js["nfe"], "nodal per_sample": ps["nfe"],
             "diffrax vmap": 1 + 6 * int(ns.max()), "diffrax joint": 1 + 6 * int(nsj)}
    row_evals = {"nodal joint": js["row_evaluations"], "nodal per_sample": ps["row_evaluations"],
                 "diffrax vmap": est["diffrax vmap"], "diffrax joint": est["diffrax joint"]}
    steps_txt = {"nodal joint": f"{js['accepted'] + js['rejected']} ({js['accepted']}+{js['rejected']})",
                 "nodal per_sample": f"rows {nodal_row_steps.min()}..{nodal_row_steps.max()}, "
                                     f"sum {nodal_row_steps.sum()}",
                 "diffrax vmap": f"rows {ns.min()}..{ns.max()}, sum {ns.sum()}",
                 "diffrax joint": f"{int(nsj)} ({int(naj)}+{int(nrj)})"}
    ys_all = {"nodal joint": y_nodal["joint"], "nodal per_sample": y_nodal["per_sample"],
              "diffrax vmap": yv, "diffrax joint": yj}

    med = {m: ac.median(times[m]) * 1e3 for m in modes}
    q = {m: (np.percentile(np.asarray(times[m]) * 1e3, 25), np.percentile(np.asarray(times[m]) * 1e3, 75))
         for m in modes}
    base_ms, base_re = med["nodal per_sample"], row_evals["nodal per_sample"]

    L = []
    L.append(f"### Scales 1e{lo:g}..1e{hi:g} (log-uniform), batch {B}, d2/h64, t=[0,10], dopri5, "
             f"rtol {RTOL:g}, atol {ATOL:g}, float64, {repeats} interleaved repeats")
    L.append("")
    L.append(f"uptime before: `{up_before}`  ")
    L.append(f"uptime after: `{up_after}`  ")
    L.append(f"1-min load sampled at each repeat: median {ac.median(loads):.2f}, "
             f"range {min(loads):.2f}..{max(loads):.2f}")
    L.append("")
    L.append("| mode | median ms | IQR ms | steps | batched f calls | row-evaluations | "
             "ms / nodal per_sample | row-evals / nodal per_sample | max abs err vs tight ref |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for m in modes:
        err = float(np.max(np.abs(ys_all[m] - ref)))
        L.append(f"| {m} | {med[m]:.3f} | {q[m][0]:.3f}..{q[m][1]:.3f} | {steps_txt[m]} | {calls[m]} | "
                 f"{row_evals[m]} | {med[m] / base_ms:.2f} | {row_evals[m] / base_re:.2f} | {err:.1e} |")
    L.append("")
    L.append(f"- nodal times are the in-process `seconds` field (forward solve only); whole-process wall "
             f"per `nodal solve` call (start-up, JSON parse/print included): joint median "
             f"{ac.median(walls['nodal joint']) * 1e3:.1f} ms, per_sample "
             f"{ac.median(walls['nodal per_sample']) * 1e3:.1f} ms.")
    L.append(f"- diffrax times: compiled call + block_until_ready, in process (compile excluded: "
             f"vmap {compile_s['diffrax vmap']:.2f} s, joint {compile_s['diffrax joint']:.2f} s).")
    L.append(f"- diffrax row-evaluations = B x (1 + 6 x num_steps), num_steps = max over rows for vmap. "
             f"Callback count (un-timed build): vmap {cnt['diffrax vmap']['rows']} row-evals in "
             f"{cnt['diffrax vmap']['calls']} batched calls; joint {cnt['diffrax joint']['calls']} calls "
             f"x {B} rows = {cnt['diffrax joint']['calls'] * B}. Estimate: vmap {est['diffrax vmap']}, "
             f"joint {est['diffrax joint']}.")
    d_ps = float(np.max(np.abs(y_nodal["per_sample"] - yv)))
    d_j = float(np.max(np.abs(y_nodal["joint"] - yj)))
    rel_ps = float(np.max(np.abs(y_nodal["per_sample"] - yv) / (ATOL + RTOL * np.abs(yv))))
    rownorm = np.abs(ref).max(axis=1)
    rowrel = lambda y: np.abs(y - ref).max(axis=1) / rownorm  # noqa: E731
    L.append(f"- nodal per_sample vs diffrax vmap, y(10) per row: max abs diff {d_ps:.2e} "
             f"(max |diff| / (atol + rtol |y|) = {rel_ps:.1f}; max over rows of |diff|_max / |y_row|_max = "
             f"{float(np.max(np.abs(y_nodal['per_sample'] - yv).max(axis=1) / rownorm)):.1e}); "
             f"nodal joint vs diffrax joint: {d_j:.2e}. |y(10)| per row ranges "
             f"{rownorm.min():.3g}..{rownorm.max():.3g}.")
    L.append(f"- Global error vs a tight reference (diffrax vmap, rtol = atol = 1e-12), max over rows of "
             f"|err|_max / |y_row|_max: " + ", ".join(f"{m} {float(np.max(rowrel(ys_all[m]))):.1e}" for m in modes)
             + f"; median over rows: nodal per_sample {float(np.median(rowrel(ys_all['nodal per_sample']))):.1e}, "
             f"diffrax vmap {float(np.median(rowrel(yv))):.1e} (global error accumulates over t in [0, 10]; "
             f"rtol/atol bound the local error per step only).")
    same = int(np.sum(nodal_row_steps == ns))
    L.append(f"- per-row steps (accepted+rejected): nodal per_sample vs diffrax vmap equal on {same}/{B} rows, "
             f"max |difference| {int(np.max(np.abs(nodal_row_steps - ns)))}; nodal picks its first step "
             f"by the Hairer heuristic (+1 evaluation per row), diffrax 0.7.2 starts at dt=0.01.")
    L.append("")
    L.append("<details><summary>per-row steps (row: scale, nodal per_sample acc+rej, diffrax vmap acc+rej)</summary>")
    L.append("")
    L.append("| row | scale | nodal steps | diffrax steps |")
    L.append("|---|---|---|---|")
    for i in range(B):
        L.append(f"| {i} | {scales[i]:.3g} | {nodal_row_steps[i]} ({ps['row_accepted'][i]}+{ps['row_rejected'][i]}) "
                 f"| {ns[i]} ({na[i]}+{nr[i]}) |")
    L.append("")
    L.append("</details>")
    L.append("")
    log(f"# {tag}: nodal per_sample row steps: {nodal_row_steps.tolist()}")
    log(f"# {tag}: diffrax vmap row steps:      {ns.tolist()}")
    log(f"# {tag}: step spread nodal {nodal_row_steps.min()}..{nodal_row_steps.max()} "
        f"({nodal_row_steps.max() / nodal_row_steps.min():.1f}x), diffrax {ns.min()}..{ns.max()}")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=31, help="interleaved repeats (>= 15)")
    ap.add_argument("--batches", default="64", help="comma-separated batch sizes (first B rows of y0)")
    ap.add_argument("--scales", default="-2:1,-1:3",
                    help="comma-separated lo:hi log10 ranges of the row scale factors, one table each")
    ap.add_argument("--out", help="also write the markdown here")
    args = ap.parse_args()
    raw_dir = os.environ.get("RAW_DIR") or tempfile.mkdtemp(prefix="per_sample_bench_")
    os.makedirs(raw_dir, exist_ok=True)
    log(f"# raw files in {raw_dir}")

    w, _ = ac.load_mlp_json(os.path.join(SHARED, "reference", "mlp_d2_h64.json"))
    with open(os.path.join(SHARED, "reference", "mlp_y0_d2.json")) as fh:
        y0_all = np.asarray(json.load(fh)["y0"], dtype=np.float64)
    nodal_ver = subprocess.run([NODAL, "--version"], capture_output=True, text=True).stdout.strip()

    parts = ["## Per-sample vs joint batch solving: nodal vs diffrax", ""]
    parts.append(f"nodal: `{NODAL}` ({nodal_ver}); diffrax {diffrax.__version__}, jax {jax.__version__} "
                 f"(CPU, XLA_FLAGS `{os.environ.get('XLA_FLAGS')}`); host {os.cpu_count()} CPUs, "
                 f"{ac._cpu_model()}; date {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}.")
    parts.append("")
    for b in (int(x) for x in args.batches.split(",")):
        for spec in args.scales.split(","):
            lo, hi = (float(x) for x in spec.split(":"))
            parts.append(run_config(w, y0_all[:b], lo, hi, args.repeats, raw_dir))
    md = "\n".join(parts)
    print(md)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(md + "\n")
        log(f"# wrote {args.out}")


if __name__ == "__main__":
    main()
