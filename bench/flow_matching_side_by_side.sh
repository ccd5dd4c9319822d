#!/usr/bin/env bash
# Per-step training time of flow matching on MNIST, nodal and PyTorch in one run on this machine
# (2 threads each; the same U-Net, batch, path, loss and Adam: see bench/flow_matching_torch.py).
# Prints both medians and their ratio for each round (each round trains in a fresh folder: a
# folder with a checkpoint would resume instead).
# Usage: bench/flow_matching_side_by_side.sh [CHANNELS] [BATCH] [python with torch]
#        (defaults: 24, 48, $HOME/.venvs/anchors/bin/python)
# NODAL=path times that binary instead of building target/release/nodal.
set -euo pipefail
cd "$(dirname "$0")/.."
c="${1:-24}"
b="${2:-48}"
py="${3:-$HOME/.venvs/anchors/bin/python}"
nodal="${NODAL:-target/release/nodal}"
[ -n "${NODAL:-}" ] || cargo build --release --bin nodal -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2; do
  "$nodal" train flow-matching --iters 40 --channels "$c" --batch "$b" --grid 0 --quiet --out "$out/round$round" >/dev/null 2>&1
  nodal_ms=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ms_per_step'])" "$out/round$round/summary.json")
  torch_ms=$(OMP_NUM_THREADS=2 "$py" bench/flow_matching_torch.py --steps 36 --threads 2 --channels "$c" --batch "$b" \
    | python3 -c "import json,sys; print(json.loads(sys.stdin.readlines()[-1])['ms_per_step_median'])")
  python3 - "$round" "$nodal_ms" "$torch_ms" "$c" "$b" <<'PY'
import sys
r, a, b, c, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"round {r}: U-Net C={c} batch {n}: nodal {a:.1f} ms  torch {b:.1f} ms  ratio {a/b:.3f}")
PY
done
