#!/usr/bin/env bash
# Spiral training (torchdiffeq's demo), nodal vs the anchors, same iteration count, one run at a time.
#
#   bench/spiral_side_by_side.sh
#
# Runs, in this order: anchors' spiral.py (torchdiffeq, direct and --adjoint, with --per_iter),
# spiral_diffrax.py (RecursiveCheckpointAdjoint and --adjoint = BacksolveAdjoint), and
# `nodal train spiral` (backprop and --adjoint), then prints a markdown table (bench/join_spiral.py).
#
# Environment (paths relative to the repository root, where the script cd's to):
#   ANCHORS_PY  python with torch, torchdiffeq, jax, diffrax   (default: python3)
#   SHARED      the shared folder                              (default: ../shared)
#   NODAL       the nodal binary                               (default: target/release/nodal)
#   ITERS       iterations for every run                       (default: 2000)
#   SEED        seed for every run                             (default: 0)
#   RAW_DIR     where raw outputs are kept                     (default: a new temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHORS_PY="${ANCHORS_PY:-python3}"
SHARED="${SHARED:-../shared}"
NODAL="${NODAL:-target/release/nodal}"
ITERS="${ITERS:-2000}"
SEED="${SEED:-0}"
RAW_DIR="${RAW_DIR:-$(mktemp -d)}"
mkdir -p "$RAW_DIR"
A="$SHARED/anchors"

stamp() { echo "# $(date -u +%FT%TZ) $*  | $(uptime)" >&2; }
stamp "torchdiffeq direct"
"$ANCHORS_PY" "$A/spiral.py" --iters "$ITERS" --seed "$SEED" --per_iter > "$RAW_DIR/torchdiffeq_direct.jsonl"
stamp "torchdiffeq adjoint"
"$ANCHORS_PY" "$A/spiral.py" --adjoint --iters "$ITERS" --seed "$SEED" --per_iter > "$RAW_DIR/torchdiffeq_adjoint.jsonl"
stamp "diffrax direct"
"$ANCHORS_PY" "$A/spiral_diffrax.py" --iters "$ITERS" --seed "$SEED" > "$RAW_DIR/diffrax_direct.jsonl"
stamp "diffrax adjoint"
"$ANCHORS_PY" "$A/spiral_diffrax.py" --adjoint --iters "$ITERS" --seed "$SEED" > "$RAW_DIR/diffrax_adjoint.jsonl"
stamp "nodal backprop"
"$NODAL" train spiral --quiet --iters "$ITERS" --seed "$SEED" --out "$RAW_DIR/nodal_backprop" > /dev/null
stamp "nodal adjoint"
"$NODAL" train spiral --quiet --adjoint --iters "$ITERS" --seed "$SEED" --out "$RAW_DIR/nodal_adjoint" > /dev/null
stamp "done"
echo "# raw outputs in $RAW_DIR" >&2
"${JOIN_PY:-python3}" bench/join_spiral.py "$RAW_DIR"
