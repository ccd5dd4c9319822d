#!/usr/bin/env bash
# Per-step training time of the particles example, nodal and PyTorch in one run on this machine
# (2 threads each; same fields, shapes, RK4 rollouts with backprop and Adam: see
# bench/particles_torch.py). Prints both medians and their ratio.
# Usage: bench/particles_side_by_side.sh [python with torch]   (default: $HOME/.venvs/anchors/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-$HOME/.venvs/anchors/bin/python}"
cargo build --release --bin nodal -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2; do
  ./target/release/nodal train particles --iters 200 --no-mlp12 --no-fig --quiet --out "$out" >/dev/null
  nodal_tr=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ms_per_step']['transformer'])" "$out/summary.json")
  nodal_mlp=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ms_per_step']['mlp'])" "$out/summary.json")
  torch_out=$(OMP_NUM_THREADS=2 "$py" bench/particles_torch.py --steps 180 --threads 2)
  torch_tr=$(echo "$torch_out" | python3 -c "import json,sys; print([json.loads(l) for l in sys.stdin if 'transformer' in l][0]['ms_per_step_median'])")
  torch_mlp=$(echo "$torch_out" | python3 -c "import json,sys; print([json.loads(l) for l in sys.stdin if '\"mlp\"' in l][0]['ms_per_step_median'])")
  python3 - "$round" "$nodal_tr" "$torch_tr" "$nodal_mlp" "$torch_mlp" <<'PY'
import sys
r, a, b, c, d = sys.argv[1], *map(float, sys.argv[2:])
print(f"round {r}: transformer nodal {a:.1f} ms  torch {b:.1f} ms  ratio {a/b:.3f} | mlp nodal {c:.2f} ms  torch {d:.2f} ms  ratio {c/d:.3f}")
PY
done
