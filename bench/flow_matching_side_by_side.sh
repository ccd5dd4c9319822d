#!/usr/bin/env bash
# Per-step training time of flow matching on MNIST, nodal and PyTorch in one run on this machine
# (2 threads each; the same U-Net, batch, path, loss and Adam: see bench/flow_matching_torch.py).
# Prints both medians and their ratio for each round (each round trains in a fresh folder: a
# folder with a checkpoint would resume instead).
# Usage: bench/flow_matching_side_by_side.sh [CHANNELS] [BATCH] [python with torch] [HEADS]
#        (defaults: 24, 48, $HOME/.venvs/anchors/bin/python, 0; HEADS > 0 adds the middle
#        attention and second middle block, --middle-attention, to both)
# NODAL="binary[,label] ..." times those builds (space-separated) instead of building
# target/release/nodal; each round runs every build, then PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
c="${1:-24}"
b="${2:-48}"
py="${3:-$HOME/.venvs/anchors/bin/python}"
heads="${4:-0}"
builds="${NODAL:-target/release/nodal,nodal}"
[ -n "${NODAL:-}" ] || cargo build --release --bin nodal -q
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2; do
  torch_ms=$(OMP_NUM_THREADS=2 "$py" bench/flow_matching_torch.py --steps 36 --threads 2 --channels "$c" --batch "$b" \
    --middle-attention "$heads" | python3 -c "import json,sys; print(json.loads(sys.stdin.readlines()[-1])['ms_per_step_median'])")
  for pair in $builds; do
    nodal="${pair%%,*}"; label="${pair#*,}"; [ "$label" != "$pair" ] || label=nodal
    run="$out/round$round-$(echo "$label" | tr -c 'A-Za-z0-9' _)"
    "$nodal" train flow-matching --iters 40 --channels "$c" --batch "$b" --middle-attention "$heads" --grid 0 --quiet --out "$run" >/dev/null 2>&1
    nodal_ms=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ms_per_step'])" "$run/summary.json")
    python3 - "$round" "$nodal_ms" "$torch_ms" "$c" "$b" "$label" "$heads" <<'PY'
import sys
r, a, b, c, n, label = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
print(f"round {r}: U-Net C={c} batch {n} heads {sys.argv[7]}: {label} {a:.1f} ms  torch {b:.1f} ms  ratio {a/b:.3f}")
PY
  done
done
