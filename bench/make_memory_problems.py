#!/usr/bin/env python3
"""Write the rk4 problem files of bench/memory.sh (standard library only).

  python3 bench/make_memory_problems.py REFERENCE_DIR OUT_DIR [N ...]

For each N (default 10 100 1000): OUT_DIR/rk4_N.json, a bare `nodal solve` problem:
MLP weights REFERENCE_DIR/mlp_d64_h256.json, y0 = first 1024 rows of mlp_y0_d64.json,
float32, solver "rk4", t = [0, 1], step_size = 1/N (the setup of the anchors' memory.py).
"""
import json
import os
import sys


def main():
    ref, out = sys.argv[1], sys.argv[2]
    steps = [int(x) for x in sys.argv[3:]] or [10, 100, 1000]
    with open(os.path.join(ref, "mlp_d64_h256.json")) as fh:
        w = json.load(fh)
    with open(os.path.join(ref, "mlp_y0_d64.json")) as fh:
        y0 = json.load(fh)["y0"][:1024]
    assert len(y0) == 1024 and len(y0[0]) == 64
    os.makedirs(out, exist_ok=True)
    for n in steps:
        prob = {"dtype": "float32", "t": [0.0, 1.0], "solver": "rk4", "rtol": 1e-6, "atol": 1e-8,
                "step_size": 1.0 / n, "max_steps": 10 * n + 10,
                "weights": {k: w[k] for k in ["W1", "b1", "W2", "b2"]}, "y0": y0}
        with open(os.path.join(out, f"rk4_{n}.json"), "w") as fh:
            json.dump(prob, fh)


if __name__ == "__main__":
    main()
