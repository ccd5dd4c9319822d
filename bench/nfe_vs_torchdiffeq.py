"""Function evaluations of torchdiffeq's dopri5 and bosh3 on the shared MLP problems, next to
nodal's (from `nodal bench --method M --repeats 1`), at equal tolerances.

    ANCHORS_PY=path/to/venv/python bash -c '$ANCHORS_PY bench/nfe_vs_torchdiffeq.py'
Run from the repository root; needs ../shared/reference and target/release/nodal.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from torchdiffeq import odeint

REF = os.path.join("..", "shared", "reference")
NODAL = os.path.join("target", "release", "nodal")
torch.set_num_threads(1)


def mlp(dim, hidden, dtype):
    with open(os.path.join(REF, f"mlp_d{dim}_h{hidden}.json")) as fh:
        w = json.load(fh)
    t = lambda k: torch.tensor(np.asarray(w[k]), dtype=dtype)
    W1, b1, W2, b2 = t("W1"), t("b1"), t("W2"), t("b2")
    count = [0]

    def f(_t, y):
        count[0] += 1
        return torch.tanh(y @ W1.T + b1) @ W2.T + b2

    return f, count


def main():
    rows = []
    for method, rtol, atol in [("dopri5", 1e-6, 1e-8), ("bosh3", 1e-4, 1e-6), ("bosh3", 1e-6, 1e-8)]:
        for dtype_name, dtype in [("float32", torch.float32), ("float64", torch.float64)]:
            for dim in (2, 64):
                for hidden in (64, 256):
                    for batch in (1, 64, 1024):
                        with open(os.path.join(REF, f"mlp_y0_d{dim}.json")) as fh:
                            y0 = torch.tensor(np.asarray(json.load(fh)["y0"])[:batch], dtype=dtype)
                        f, count = mlp(dim, hidden, dtype)
                        with torch.no_grad():
                            odeint(f, y0, torch.tensor([0.0, 10.0], dtype=dtype), rtol=rtol, atol=atol, method=method)
                        out = subprocess.run([NODAL, "bench", "--reference", REF, "--method", method, "--rtol", str(rtol), "--atol", str(atol),
                                              "--dims", str(dim), "--hidden", str(hidden), "--batch", str(batch), "--dtype", dtype_name,
                                              "--repeats", "1"], capture_output=True, text=True, check=True)
                        ours = json.loads(out.stdout.strip().splitlines()[-1])["nfe"]
                        rows.append((method, rtol, dtype_name, dim, hidden, batch, ours, count[0]))
    print("| method | rtol | dtype | dim | hidden | batch | nodal NFE | torchdiffeq NFE | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for m, r, d, dim, h, b, ours, theirs in rows:
        ratio = ours / theirs
        worst = max(worst, ratio)
        print(f"| {m} | {r:g} | {d} | {dim} | {h} | {b} | {ours} | {theirs} | {ratio:.3f} |")
    print(f"\nworst nodal/torchdiffeq NFE ratio: {worst:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
