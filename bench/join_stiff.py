"""Join `nodal stiff` JSON lines and bench/stiff_anchors.py JSON lines into one markdown table.

    python3 bench/join_stiff.py NODAL_LINES ANCHOR_LINES

Standard-library Python only. Rows are grouped by problem; nodal's rows are marked "nodal",
the anchors' by their library. Steps are accepted steps (nodal's `stats.accepted`, the anchors'
`stats.steps`); time ratios are against scipy Radau on the same problem.
"""

import json
import re
import sys

LABELS = {
    "kvaerno3": "nodal kvaerno3",
    "kvaerno5": "nodal kvaerno5",
    "rodas5": "nodal rodas5",
    "dopri5": "nodal dopri5 (explicit)",
}
ANCHOR_LABELS = {
    "radau": "scipy Radau",
    "bdf": "scipy BDF",
    "kvaerno5": "diffrax Kvaerno5",
    "dopri5_diffrax": "diffrax Dopri5 (explicit)",
    "rk45": "scipy RK45 (explicit)",
}


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    nodal, anchors = read(sys.argv[1]), read(sys.argv[2])
    rows = [(r["problem"], LABELS.get(r["method"], r["method"]), r) for r in nodal]
    rows += [(r["problem"], ANCHOR_LABELS.get(r["method"], r["method"]), r) for r in anchors]
    order = ["robertson", "vdp1000", "hires", "orego"]
    rtol = nodal[0]["rtol"] if nodal else None
    atol = nodal[0]["atol"] if nodal else None
    print(f"rtol {rtol}, atol {atol}; error = max_i |y_i - ref_i| / (|ref_i| + atol) at the end time\n")
    print("| problem | solver | accepted steps | rejected | f evals | Jacobians | LU | error | ms | time / Radau |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in order:
        group = [r for r in rows if r[0] == p]
        radau = next((r for _, label, r in group if label == "scipy Radau" and not r.get("failed")), None)
        for _, label, r in group:
            s = r.get("stats", {}) or {}
            secs = r.get("seconds")
            ratio = secs / radau["seconds"] if (radau and secs and not r.get("failed")) else None
            if r.get("failed"):
                reached = r.get("t_reached", r.get("t_final"))  # the anchors write the time reached as t_final
                m = re.search(r"at t = ([-+0-9.eE]+)", str(r.get("error", "")))
                if m and not reached:
                    reached = float(m.group(1))
                err = f"failed at t = {reached:.3g}" if isinstance(reached, (int, float)) else "failed"
            else:
                err = fmt(r.get("error"), ".1e")
            print(
                f"| {p} | {label} | {fmt(s.get('accepted', s.get('steps')), 'd')} | {fmt(s.get('rejected'), 'd')} | {fmt(s.get('nfe'), 'd')} | "
                f"{fmt(s.get('jacobians'), 'd')} | {fmt(s.get('lu'), 'd')} | {err} | {fmt(secs * 1e3 if secs else None, '.2f')} | "
                f"{fmt(ratio, '.2g')} |"
            )


if __name__ == "__main__":
    main()
