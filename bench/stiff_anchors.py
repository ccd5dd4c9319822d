"""Reference stiff solvers (scipy, diffrax) on four stiff test problems, one JSON line per run.

What it does
------------
Runs the reference ("anchor") solvers that nodal's stiff solvers are compared against on four
problems from the Hairer-Wanner / Mazzia-Magherini IVP test set, all in float64:

  robertson  Robertson chemical kinetics, 3 components, t in [0, 1e11], y0 = (1, 0, 0)
  vdp1000    Van der Pol, mu = 1000, y1' = y2, y2' = mu (1 - y1^2) y2 - y1, t in [0, 3000], y0 = (2, 0)
  hires      HIRES (Schaefer 1975), 8 components, t in [0, 321.8122], y0 = (1, 0, 0, 0, 0, 0, 0, 0.0057)
  orego      Oregonator (s = 77.27, q = 8.375e-6, w = 0.161), 3 components, t in [0, 360], y0 = (1, 2, 3)

Methods (`--methods`, comma list):

  radau           scipy Radau (Radau IIA, order 5); finite-difference Jacobian unless --analytic-jac
  bdf             scipy BDF (variable order 1-5, NDF); finite-difference Jacobian unless --analytic-jac
  kvaerno5        diffrax Kvaerno5 (ESDIRK, order 5), PIDController(rtol, atol), jax x64, Jacobian by
                  forward-mode autodiff (diffrax has no analytic-Jacobian option), max_steps 1_000_000
  dopri5_diffrax  diffrax Dopri5 (explicit, for contrast), capped at --explicit-max-steps (200_000)
  rk45            scipy RK45 (explicit, for contrast), capped at --time-cap seconds of wall clock (60)

scipy methods are driven through the solver classes that `solve_ivp` dispatches to
(`scipy.integrate.Radau`, `BDF`, `RK45`), stepping them in the same loop `solve_ivp` runs but
without storing the trajectory, so that a wall-clock cap can stop a run between two steps.
diffrax saves only the final time (SaveAt(t1=True)) and is timed with an ahead-of-time compiled
function, so `seconds` excludes JIT compilation; `compile_seconds` is lowering + compilation.

Counting: every method except rk45 makes one extra *counting run* that is not timed. For scipy it
wraps the right-hand side in a call counter (to see the calls hidden inside finite-difference
Jacobians, which scipy's `nfev` does not include) and wraps scipy's Newton solver to count step
rejections (scipy does not report them). For diffrax it wraps the vector field in a
`jax.custom_jvp` whose primal and JVP rules call `jax.debug.callback` counters: primal calls are
`nfe`, JVP-rule calls are linearisations (Jacobian evaluations). The timed runs use the bare
right-hand side. For rk45 `nfev = 2 + 6 * attempted steps`, so rejections follow from nfev.

Usage
-----
    PY=$HOME/.venvs/anchors/bin/python
    $PY bench/stiff_anchors.py                                   # all problems, rtol 1e-6, atol 1e-10
    $PY bench/stiff_anchors.py --problem all --rtol 1e-8 --atol 1e-12 > out.jsonl
    $PY bench/stiff_anchors.py --problem hires --methods radau,bdf --analytic-jac
    $PY bench/stiff_anchors.py --make-reference                  # rewrites bench/stiff_reference.json

JSON lines go to stdout, progress and the machine load (`uptime`) to stderr. Errors are measured
against bench/stiff_reference.json (see its "source" fields for how each y_ref was obtained).

Output fields (one object per problem x method)
-----------------------------------------------
  problem, method     names as above
  rtol, atol          tolerances passed to the solver (scalar atol, all components)
  jac                 "finite-difference" | "analytic" (scipy implicit), "autodiff" (kvaerno5), null
  t_final             time reached (t_end unless the run failed)
  y_final             state at t_final (full precision)
  stats.steps         accepted steps
  stats.rejected      rejected step attempts (error test or Newton failure followed by a smaller h)
  stats.nfe           right-hand-side evaluations outside Jacobians: scipy's `nfev` (scipy's nfev does
                      NOT count the evaluations made by its finite-difference Jacobian); diffrax:
                      primal vector-field calls (the linearisation point of a Jacobian is not counted)
  stats.nfe_jac       right-hand-side calls made inside finite-difference Jacobians (scipy, FD only)
  stats.jacobians     Jacobian evaluations: scipy `njev`; diffrax: Jacobians of f (one per attempted
                      step for Kvaerno5, see stats.linearisations)
  stats.linearisations  diffrax only: JVP-rule calls counted; Kvaerno5 makes two per attempted step
                      (the real Jacobian at stage 2 and an identity placeholder for the explicit
                      first stage, built by linearising the stage relation with a zero diagonal)
  stats.lu            LU factorisations: scipy `nlu` (Radau factorises a real n x n and a complex
                      n x n matrix each time and counts them separately: 2 per factorisation event); diffrax: one per
                      real Jacobian (lineax LU in VeryChord.init), placeholder ones not included
  error               max_i |y_i - y_ref_i| / (|y_ref_i| + atol), null if the run failed
  seconds             median wall-clock seconds of --repeats timed runs (a run stopped by the
                      wall-clock cap is run once)
  compile_seconds     diffrax only: jit lowering + XLA compilation of the timed function
  repeats             number of timed runs behind `seconds`
  failed              true if t_end was not reached (step cap, time cap or solver failure)
  note                reason for failure, caveats on the counts
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_PATH = os.path.join(HERE, "stiff_reference.json")

ALL_METHODS = ["radau", "bdf", "kvaerno5", "dopri5_diffrax", "rk45"]


# ----------------------------------------------------------------------------------------------
# Problems. `rhs(t, y, xp)` works for numpy (xp=np) and jax (xp=jax.numpy); `jac(t, y)` is numpy.
# ----------------------------------------------------------------------------------------------

def robertson_rhs(t, y, xp):
    y1, y2, y3 = y[0], y[1], y[2]
    r1 = 0.04 * y1
    r2 = 1.0e4 * y2 * y3
    r3 = 3.0e7 * y2 * y2
    return xp.array([-r1 + r2, r1 - r2 - r3, r3])


def robertson_jac(t, y):
    _, y2, y3 = y
    return np.array([
        [-0.04, 1.0e4 * y3, 1.0e4 * y2],
        [0.04, -1.0e4 * y3 - 6.0e7 * y2, -1.0e4 * y2],
        [0.0, 6.0e7 * y2, 0.0],
    ])


VDP_MU = 1000.0


def vdp_rhs(t, y, xp):
    y1, y2 = y[0], y[1]
    return xp.array([y2, VDP_MU * (1.0 - y1 * y1) * y2 - y1])


def vdp_jac(t, y):
    y1, y2 = y
    return np.array([
        [0.0, 1.0],
        [-2.0 * VDP_MU * y1 * y2 - 1.0, VDP_MU * (1.0 - y1 * y1)],
    ])


def hires_rhs(t, y, xp):
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    r = 280.0 * y6 * y8
    return xp.array([
        -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
        1.71 * y1 - 8.75 * y2,
        -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
        8.32 * y2 + 1.71 * y3 - 1.12 * y4,
        -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
        -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
        r - 1.81 * y7,
        -r + 1.81 * y7,
    ])


def hires_jac(t, y):
    y6, y8 = y[5], y[7]
    J = np.zeros((8, 8))
    J[0, 0], J[0, 1], J[0, 2] = -1.71, 0.43, 8.32
    J[1, 0], J[1, 1] = 1.71, -8.75
    J[2, 2], J[2, 3], J[2, 4] = -10.03, 0.43, 0.035
    J[3, 1], J[3, 2], J[3, 3] = 8.32, 1.71, -1.12
    J[4, 4], J[4, 5], J[4, 6] = -1.745, 0.43, 0.43
    J[5, 3], J[5, 4], J[5, 5], J[5, 6], J[5, 7] = 0.69, 1.71, -0.43 - 280.0 * y8, 0.69, -280.0 * y6
    J[6, 5], J[6, 6], J[6, 7] = 280.0 * y8, -1.81, 280.0 * y6
    J[7, 5], J[7, 6], J[7, 7] = -280.0 * y8, 1.81, -280.0 * y6
    return J


OREGO_S, OREGO_Q, OREGO_W = 77.27, 8.375e-6, 0.161


def orego_rhs(t, y, xp):
    y1, y2, y3 = y[0], y[1], y[2]
    return xp.array([
        OREGO_S * (y2 + y1 * (1.0 - OREGO_Q * y1 - y2)),
        (y3 - (1.0 + y1) * y2) / OREGO_S,
        OREGO_W * (y1 - y3),
    ])


def orego_jac(t, y):
    y1, y2, _ = y
    return np.array([
        [OREGO_S * (1.0 - 2.0 * OREGO_Q * y1 - y2), OREGO_S * (1.0 - y1), 0.0],
        [-y2 / OREGO_S, -(1.0 + y1) / OREGO_S, 1.0 / OREGO_S],
        [OREGO_W, 0.0, -OREGO_W],
    ])


PROBLEMS = {
    "robertson": dict(rhs=robertson_rhs, jac=robertson_jac, t_end=1.0e11, y0=[1.0, 0.0, 0.0]),
    "vdp1000": dict(rhs=vdp_rhs, jac=vdp_jac, t_end=3000.0, y0=[2.0, 0.0]),
    "hires": dict(rhs=hires_rhs, jac=hires_jac, t_end=321.8122,
                  y0=[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057]),
    "orego": dict(rhs=orego_rhs, jac=orego_jac, t_end=360.0, y0=[1.0, 2.0, 3.0]),
}

# Values printed in the IVP test set (Mazzia & Magherini, release 2.4: hires.f, orego.f, rober.f).
# The test set's vdpol is a rescaled Van der Pol (eps = 1e-6 on [0, 2]), so none for vdp1000.
PUBLISHED = {
    "robertson": [0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050],
    "hires": [0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4,
              0.1175651343283149e-2, 0.2386356198831331e-2, 0.6238968252742796e-2,
              0.2849998395185769e-2, 0.2850001604814231e-2],
    "orego": [0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3],
}
PUBLISHED_SOURCE = {
    "robertson": "IVP test set rober.f (RADAU5, Cray C90 quad-like precision: uround 1.01e-19)",
    "hires": "IVP test set hires.f (RADAU5 on Cray C90, uround 1.01e-19, rtol=atol=h0=1.1e-18)",
    "orego": "IVP test set orego.f (RADAU, Alphaserver, uround 1.01e-19, rtol=h0=1.1e-18, atol=1.1e-40)",
}

# Absolute tolerances for the reference computations: far below every component's size at the
# times that matter, so the reference runs are controlled by rtol alone.
REFERENCE_ATOL = {"robertson": 1e-20, "vdp1000": 1e-14, "hires": 1e-18, "orego": 1e-14}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


# ----------------------------------------------------------------------------------------------
# scipy
# ----------------------------------------------------------------------------------------------

def _scipy_classes():
    from scipy.integrate import BDF, LSODA, RK45, Radau
    return {"radau": Radau, "bdf": BDF, "rk45": RK45, "lsoda": LSODA}


class _RejectionCounter:
    """Wraps scipy's Newton solver for Radau / BDF to count step-size reductions inside a step.

    Radau calls solve_collocation_system(fun, t, y, h, ...) and BDF calls
    solve_bdf_system(fun, t_new, y_predict, c, ...) with c = h / alpha[order]; argument 3 is the
    step size (or proportional to it, order fixed within a step). A Newton retry after a Jacobian
    refresh keeps the step size, a rejection (error test or Newton failure) shrinks it, so the
    number of distinct consecutive argument-3 values within one step, minus one, is the number of
    rejections in that step.
    """

    def __init__(self, method):
        import scipy.integrate._ivp.bdf as bdf_mod
        import scipy.integrate._ivp.radau as radau_mod
        self.mod, self.name = ((radau_mod, "solve_collocation_system") if method == "radau"
                               else (bdf_mod, "solve_bdf_system"))
        self.orig = getattr(self.mod, self.name)
        self.hs = []

    def __enter__(self):
        orig, hs = self.orig, self.hs

        def wrapped(*args, **kwargs):
            hs.append(float(args[3]))
            return orig(*args, **kwargs)

        setattr(self.mod, self.name, wrapped)
        return self

    def __exit__(self, *exc):
        setattr(self.mod, self.name, self.orig)

    def take(self):
        groups = 0
        last = None
        for h in self.hs:
            if h != last:
                groups += 1
                last = h
        self.hs.clear()
        return max(groups - 1, 0)


def scipy_once(name, method, rtol, atol, analytic_jac, time_cap, counting=False):
    """One scipy run; returns a dict with the result, counts and elapsed seconds."""
    p = PROBLEMS[name]
    rhs = p["rhs"]
    calls = [0]
    if counting:
        def fun(t, y):
            calls[0] += 1
            return rhs(t, y, np)
    else:
        def fun(t, y):
            return rhs(t, y, np)
    cls = _scipy_classes()[method]
    kwargs = dict(rtol=rtol, atol=atol)
    if method in ("radau", "bdf", "lsoda") and analytic_jac:
        kwargs["jac"] = p["jac"]
    rej_counter = _RejectionCounter(method) if counting and method in ("radau", "bdf") else None
    if rej_counter is not None:
        rej_counter.__enter__()
    try:
        start = time.perf_counter()
        deadline = start + time_cap
        solver = cls(fun, 0.0, np.array(p["y0"], dtype=np.float64), p["t_end"], **kwargs)
        if rej_counter is not None:
            rej_counter.take()  # nothing happens before the first step; keep the count per step
        steps = 0
        rejected = 0
        capped = False
        message = None
        while solver.status == "running":
            message = solver.step()
            if rej_counter is not None:
                rejected += rej_counter.take()
            if solver.status == "failed":
                break
            steps += 1
            if solver.status == "running" and time.perf_counter() > deadline:
                capped = True
                break
        elapsed = time.perf_counter() - start
    finally:
        if rej_counter is not None:
            rej_counter.__exit__(None, None, None)
    out = dict(t=float(solver.t), y=[float(v) for v in solver.y], steps=steps,
               nfev=int(solver.nfev), njev=int(getattr(solver, "njev", 0)),
               nlu=int(getattr(solver, "nlu", 0)), seconds=elapsed,
               failed=solver.status != "finished", capped=capped,
               message=message if solver.status == "failed" else None)
    if counting:
        out["calls"] = calls[0]
        out["rejected"] = rejected if rej_counter is not None else None
    return out


def run_scipy(name, method, rtol, atol, analytic_jac, repeats, time_cap):
    timed = []
    first = scipy_once(name, method, rtol, atol, analytic_jac, time_cap)
    timed.append(first)
    notes = []
    if not first["capped"]:
        for _ in range(repeats - 1):
            timed.append(scipy_once(name, method, rtol, atol, analytic_jac, time_cap))
    else:
        notes.append(f"stopped by the {time_cap:g} s wall-clock cap after {first['steps']} "
                     f"steps at t = {first['t']:.6g} of {PROBLEMS[name]['t_end']:g}; run once")
    if first["message"]:
        notes.append(f"scipy: {first['message']}")
    stats = dict(steps=first["steps"], rejected=None, nfe=first["nfev"], nfe_jac=None,
                 jacobians=first["njev"] if method != "rk45" else 0,
                 lu=first["nlu"] if method != "rk45" else 0)
    if method == "rk45":
        attempts, rem = divmod(first["nfev"] - 2, 6)
        if rem == 0 and attempts >= first["steps"]:
            stats["rejected"] = attempts - first["steps"]
        stats["nfe_jac"] = 0
    else:
        c = scipy_once(name, method, rtol, atol, analytic_jac, time_cap, counting=True)
        stats["rejected"] = c["rejected"]
        stats["nfe_jac"] = c["calls"] - c["nfev"]
        if c["capped"] != first["capped"] or (
                not first["capped"] and (c["steps"], c["nfev"], c["njev"], c["nlu"]) !=
                (first["steps"], first["nfev"], first["njev"], first["nlu"])):
            notes.append(f"counting run differed: steps {c['steps']} nfev {c['nfev']} "
                         f"njev {c['njev']} nlu {c['nlu']}")
        if analytic_jac:
            notes.append("analytic Jacobian")
        else:
            notes.append("finite-difference Jacobian (scipy num_jac); nfe is scipy nfev, which "
                         "excludes the nfe_jac calls made inside FD Jacobians")
        if method == "radau":
            notes.append("lu counts real and complex factorisations separately")
    if method == "rk45" and stats["rejected"] is None:
        notes.append("rejected not derivable from nfev")
    return dict(t=first["t"], y=first["y"], stats=stats,
                seconds=statistics.median(r["seconds"] for r in timed), repeats=len(timed),
                failed=first["failed"], notes=notes, compile_seconds=None,
                jac=(None if method == "rk45" else
                     ("analytic" if analytic_jac else "finite-difference")))


# ----------------------------------------------------------------------------------------------
# diffrax
# ----------------------------------------------------------------------------------------------

_JAX = {}


def _jax():
    if not _JAX:
        import jax
        jax.config.update("jax_enable_x64", True)
        import diffrax
        import jax.numpy as jnp
        _JAX.update(jax=jax, jnp=jnp, diffrax=diffrax)
    return _JAX["jax"], _JAX["jnp"], _JAX["diffrax"]


def _diffrax_solve_fn(name, solver_name, rtol, atol, max_steps, counters=None):
    jax, jnp, diffrax = _jax()
    p = PROBLEMS[name]
    rhs = p["rhs"]

    def raw(t, y, args):
        return rhs(t, y, jnp)

    if counters is None:
        vf = raw
    else:
        def count_f():
            counters["f"] += 1

        def count_lin():
            counters["lin"] += 1

        @jax.custom_jvp
        def vf(t, y, args):
            jax.debug.callback(count_f)
            return raw(t, y, args)

        @vf.defjvp
        def vf_jvp(primals, tangents):
            jax.debug.callback(count_lin)
            return jax.jvp(raw, primals, tangents)

    solver = {"kvaerno5": diffrax.Kvaerno5, "dopri5_diffrax": diffrax.Dopri5}[solver_name]()
    term = diffrax.ODETerm(vf)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    t_end = p["t_end"]

    def solve(y0):
        sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=t_end, dt0=None, y0=y0,
                                  stepsize_controller=controller,
                                  saveat=diffrax.SaveAt(t1=True), max_steps=max_steps,
                                  throw=False)
        ok = sol.result == diffrax.RESULTS.successful
        return sol.ts[-1], sol.ys[-1], sol.stats, ok, sol.result

    return solve


def run_diffrax(name, method, rtol, atol, repeats, max_steps):
    jax, jnp, diffrax = _jax()
    y0 = jnp.array(PROBLEMS[name]["y0"], dtype=jnp.float64)
    solve = _diffrax_solve_fn(name, method, rtol, atol, max_steps)
    c0 = time.perf_counter()
    compiled = jax.jit(solve).lower(y0).compile()
    compile_seconds = time.perf_counter() - c0
    times = []
    out = None
    for _ in range(max(repeats, 1)):
        s = time.perf_counter()
        out = jax.block_until_ready(compiled(y0))
        times.append(time.perf_counter() - s)
    t, y, st, ok, result = out
    stats = dict(steps=int(st["num_accepted_steps"]), rejected=int(st["num_rejected_steps"]),
                 nfe=None, nfe_jac=None, jacobians=None, linearisations=None, lu=None)
    notes = []
    # counting run: same solve with a counting vector field (not timed)
    counters = {"f": 0, "lin": 0}
    csolve = jax.jit(_diffrax_solve_fn(name, method, rtol, atol, max_steps, counters))
    ct, cy, cst, cok, _ = jax.block_until_ready(csolve(y0))
    jax.effects_barrier()
    if int(cst["num_steps"]) != int(st["num_steps"]) or bool(cok) != bool(ok):
        notes.append(f"counting run differed: num_steps {int(cst['num_steps'])} vs "
                     f"{int(st['num_steps'])}")
    stats["nfe"] = counters["f"]
    if method == "kvaerno5":
        attempted = int(cst["num_steps"])
        stats["linearisations"] = counters["lin"]
        stats["jacobians"] = attempted
        stats["lu"] = attempted
        notes.append("Jacobian by jax.linearize of the stage relation (forward-mode AD), one per "
                     "attempted step; linearisations also counts diffrax's identity placeholder "
                     f"per step ({counters['lin']} = 2 x {attempted} expected); "
                     "nfe = primal vector-field calls")
        jac = "autodiff"
    else:
        stats["jacobians"] = 0
        stats["lu"] = 0
        jac = None
    if not bool(ok):
        notes.append(f"diffrax: {result} (max_steps {max_steps}); t reached {float(t):.6g} "
                     f"of {PROBLEMS[name]['t_end']:g}")
    return dict(t=float(t), y=[float(v) for v in np.asarray(y)], stats=stats,
                seconds=statistics.median(times), repeats=len(times), failed=not bool(ok),
                notes=notes, compile_seconds=compile_seconds, jac=jac)


# ----------------------------------------------------------------------------------------------
# runs
# ----------------------------------------------------------------------------------------------

def load_reference():
    try:
        with open(REFERENCE_PATH) as fh:
            return json.load(fh)["problems"]
    except (OSError, KeyError, ValueError):
        return {}


def rel_error(y, y_ref, atol):
    y = np.asarray(y, dtype=np.float64)
    y_ref = np.asarray(y_ref, dtype=np.float64)
    return float(np.max(np.abs(y - y_ref) / (np.abs(y_ref) + atol)))


def main_runs(args):
    problems = list(PROBLEMS) if args.problem == "all" else [args.problem]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in ALL_METHODS:
            sys.exit(f"unknown method {m!r}; choose from {','.join(ALL_METHODS)}")
    reference = load_reference()
    log(f"# {uptime()}")
    log(f"# numpy {np.__version__}; python {sys.version.split()[0]}")
    for name in problems:
        y_ref = reference.get(name, {}).get("y_ref")
        for method in methods:
            log(f"# {name} {method} rtol={args.rtol:g} atol={args.atol:g} ...")
            if method in ("radau", "bdf", "rk45"):
                r = run_scipy(name, method, args.rtol, args.atol, args.analytic_jac,
                              args.repeats, args.time_cap)
            else:
                r = run_diffrax(name, method, args.rtol, args.atol, args.repeats,
                                args.implicit_max_steps if method == "kvaerno5"
                                else args.explicit_max_steps)
            error = None
            if not r["failed"] and y_ref is not None:
                error = rel_error(r["y"], y_ref, args.atol)
            if y_ref is None:
                r["notes"].append("no reference value (run --make-reference)")
            line = dict(problem=name, method=method, rtol=args.rtol, atol=args.atol, jac=r["jac"],
                        t_final=r["t"], y_final=r["y"], stats=r["stats"], error=error,
                        seconds=r["seconds"], compile_seconds=r["compile_seconds"],
                        repeats=r["repeats"], failed=r["failed"], note="; ".join(r["notes"]))
            print(json.dumps(line), flush=True)
            log(f"#   steps {r['stats']['steps']} rejected {r['stats']['rejected']} "
                f"nfe {r['stats']['nfe']} error {error} seconds {r['seconds']:.4g} "
                f"failed {r['failed']}")
    log(f"# {uptime()}")


# ----------------------------------------------------------------------------------------------
# reference values
# ----------------------------------------------------------------------------------------------

def _max_rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return [float(v) for v in np.abs(a - b) / np.abs(b)]


def _check_jacobian(name):
    """Analytic Jacobian against central differences at a non-trivial state; returns max rel diff."""
    p = PROBLEMS[name]
    rng = np.random.default_rng(0)
    y = np.abs(np.array(p["y0"])) + rng.uniform(0.1, 1.0, len(p["y0"]))
    J = p["jac"](0.0, y)
    Jfd = np.zeros_like(J)
    for j in range(len(y)):
        h = 1e-6 * max(1.0, abs(y[j]))
        e = np.zeros_like(y)
        e[j] = h
        Jfd[:, j] = (p["rhs"](0.0, y + e, np) - p["rhs"](0.0, y - e, np)) / (2 * h)
    return float(np.max(np.abs(J - Jfd)) / max(np.max(np.abs(J)), 1e-300))


def make_reference(args):
    log(f"# {uptime()}")
    import scipy
    jax, _, diffrax = _jax()
    out = dict(
        description=("Reference end values y(t_end) for bench/stiff_anchors.py, float64. "
                     "y_ref is the IVP test set's published value where scipy Radau at rtol "
                     "1e-13 (analytic Jacobian) confirms it, else that Radau computation. "
                     "max_rel_disagreement[i] = max over the independent computations and the "
                     "published value of |a_i - y_ref_i| / |y_ref_i| (failed computations "
                     "are listed under computations but left out)."),
        generated_by="bench/stiff_anchors.py --make-reference",
        versions=dict(numpy=np.__version__, scipy=scipy.__version__, jax=jax.__version__,
                      diffrax=diffrax.__version__),
        problems={},
    )
    for name, p in PROBLEMS.items():
        atol = REFERENCE_ATOL[name]
        jerr = _check_jacobian(name)
        log(f"# {name}: analytic Jacobian vs central differences, max rel {jerr:.2e}")
        comps = {}
        plan = [("radau_rtol1e-13", "radau", 1e-13), ("radau_rtol1e-12", "radau", 1e-12),
                ("bdf_rtol1e-12", "bdf", 1e-12), ("lsoda_rtol1e-12", "lsoda", 1e-12),
                ("kvaerno5_rtol1e-10", "kvaerno5", 1e-10)]
        for label, method, rtol in plan:
            s = time.perf_counter()
            if method == "kvaerno5":
                # diffrax's Kvaerno5 rejects about as many steps as it accepts at tight
                # tolerances (Newton failures); at rtol 1e-12 it does not finish Robertson or
                # Oregonator in 1e6 steps, and Oregonator not even at 1e-10 in 3e5.
                d = run_diffrax(name, "kvaerno5", rtol, atol, 1, 300_000)
                r = dict(y=d["y"], t=d["t"], steps=d["stats"]["steps"], failed=d["failed"],
                         message="; ".join(d["notes"][1:]) or None)
                solver = "diffrax Kvaerno5, PIDController, autodiff Jacobian, max_steps 300000"
            else:
                r = scipy_once(name, method, rtol, atol, True, 3600.0)
                solver = (f"scipy {'LSODA (ODEPACK Fortran)' if method == 'lsoda' else method}, "
                          "analytic Jacobian")
            log(f"#   {label}: failed {r['failed']} steps {r['steps']} "
                f"({time.perf_counter() - s:.1f} s) y {r['y']}")
            comps[label] = dict(solver=solver, rtol=rtol, atol=atol, steps=r["steps"],
                                failed=r["failed"], t_reached=r["t"], y=r["y"])
            if r["failed"]:
                comps[label]["message"] = r.get("message")
            if r["failed"] and method == "bdf":
                r = scipy_once(name, method, 1e-10, atol, True, 3600.0)
                log(f"#   bdf_rtol1e-10: failed {r['failed']} steps {r['steps']} y {r['y']}")
                comps["bdf_rtol1e-10"] = dict(solver="scipy bdf, analytic Jacobian", rtol=1e-10,
                                              atol=atol, steps=r["steps"], failed=r["failed"],
                                              t_reached=r["t"], y=r["y"])
                if r["failed"]:
                    comps["bdf_rtol1e-10"]["message"] = r.get("message")
        ok = {label: c for label, c in comps.items() if not c["failed"]}
        best = comps["radau_rtol1e-13"]["y"]
        published = PUBLISHED.get(name)
        pairwise = {}
        for label, c in ok.items():
            if label != "radau_rtol1e-13":
                pairwise[f"{label}_vs_radau_rtol1e-13"] = _max_rel(c["y"], best)
        if published is not None:
            for label, c in ok.items():
                pairwise[f"{label}_vs_published"] = _max_rel(c["y"], published)
        confirmed = (published is not None
                     and max(pairwise["radau_rtol1e-13_vs_published"]) < 1e-9)
        if confirmed:
            y_ref = list(published)
            source = (f"published: {PUBLISHED_SOURCE[name]}; confirmed by scipy Radau rtol 1e-13 "
                      f"atol {atol:g} analytic Jacobian (max rel diff "
                      f"{max(pairwise['radau_rtol1e-13_vs_published']):.1e})")
            candidates = [c["y"] for c in ok.values()]
        else:
            y_ref = list(best)
            source = (f"computed: scipy Radau rtol 1e-13 atol {atol:g} analytic Jacobian "
                      f"({comps['radau_rtol1e-13']['steps']} steps); checked against "
                      + ", ".join(lbl for lbl in ok if lbl != "radau_rtol1e-13")
                      + ("" if published is None else
                         f"; NOT equal to the published value {published}"))
            candidates = [c["y"] for lbl, c in ok.items() if lbl != "radau_rtol1e-13"]
            if published is not None:
                candidates.append(published)
        disagreement = np.max(np.array([_max_rel(c, y_ref) for c in candidates]), axis=0)
        out["problems"][name] = dict(
            t_end=p["t_end"], y0=p["y0"], y_ref=y_ref, source=source,
            published=published,
            max_rel_disagreement=[float(v) for v in disagreement],
            pairwise_rel_disagreement=pairwise,
            computations=comps,
            analytic_jacobian_check=jerr,
        )
        log(f"#   y_ref {y_ref}\n#   max rel disagreement {list(disagreement)}")
    with open(REFERENCE_PATH, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    log(f"# wrote {REFERENCE_PATH}")
    log(f"# {uptime()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problem", default="all", choices=list(PROBLEMS) + ["all"])
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--analytic-jac", action="store_true",
                    help="pass the analytic Jacobian to scipy Radau and BDF")
    ap.add_argument("--time-cap", type=float, default=60.0,
                    help="wall-clock cap per scipy run, seconds (default 60)")
    ap.add_argument("--explicit-max-steps", type=int, default=200_000,
                    help="max_steps for diffrax Dopri5 (default 200000)")
    ap.add_argument("--implicit-max-steps", type=int, default=1_000_000,
                    help="max_steps for diffrax Kvaerno5 (default 1000000)")
    ap.add_argument("--make-reference", action="store_true",
                    help="recompute bench/stiff_reference.json instead of running the anchors")
    args = ap.parse_args()
    if args.make_reference:
        make_reference(args)
    else:
        main_runs(args)


if __name__ == "__main__":
    main()
