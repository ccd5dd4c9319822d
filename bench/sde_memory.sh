#!/usr/bin/env bash
# Peak memory of SDE gradients against the number of steps: the continuous adjoint and reversible
# Heun's adjoint stay flat, backprop grows by one state per step, checkpointing by sqrt(steps).
#
#   bench/sde_memory.sh            # prints a markdown table
#
# Problem: the SDE reference file's network (dim 3, hidden 8, diagonal sigmoid diffusion) on
# 4096 rows (y0 repeated), float64, a seeded Brownian path, dt = 2^-10, N steps, output at N.
set -euo pipefail
cd "$(dirname "$0")/.."
NODAL="${NODAL:-target/release/nodal}"
DIR="$(mktemp -d)"
echo "| steps | scheme | --grad | peak RSS MiB | seconds |"
echo "|---:|---|---|---:|---:|"
for n in 1000 4000 16000; do
  python3 - "$n" "$DIR/p$n.json" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
p = json.load(open("data/reference/sde_vectors_seed0.json"))["problem"]
q = {"dtype": "float64", "t0": 0.0, "dt": 2.0 ** -10, "n_steps": n, "out_steps": [n],
     "weights": p["weights"], "y0": (p["y0"] * 1024)[:4096], "seed": 1}
json.dump(q, open(out, "w"))
PY
  for case in "midpoint backprop" "midpoint checkpoint" "midpoint adjoint" "reversible_heun adjoint"; do
    set -- $case
    /usr/bin/time -f "%M %e" -o "$DIR/t" "$NODAL" solve "$DIR/p$n.json" --scheme "$1" --grad "$2" --memory-limit 8G > /dev/null
    read -r kb sec < "$DIR/t"
    echo "| $n | $1 | $2 | $((kb / 1024)) | $sec |"
  done
done
rm -rf "$DIR"
