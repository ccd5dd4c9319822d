#!/usr/bin/env bash
# Neural-SDE solve and gradient times, nodal vs the anchors (torchsde, diffrax), same configs:
# the anchors' sde_bench.py (drift MLP, sigmoid diagonal diffusion, 1000 steps of 2^-10, f32).
#
#   bench/sde_side_by_side.sh [key|full]
#
#   key (default): dims 2 and 64, batches 1 and 1024, methods euler and midpoint
#   full:          batches 1, 64, 1024 and methods euler, midpoint, euler_heun
#
# nodal runs twice (before and after the anchors) and each row takes the smaller median, so a
# burst of load on the shared machine hits both sides alike.
#
# Environment (paths relative to the repository root, where the script cd's to):
#   ANCHORS_PY  python with torch, torchsde, jax, diffrax   (default: python3)
#   SHARED      the shared folder                           (default: ../shared)
#   NODAL       the nodal binary                            (default: target/release/nodal)
#   RAW_DIR     where the raw JSON lines are kept           (default: a new temp dir)
# Prints the markdown table (python3 bench/join_sde.py) on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-key}"
ANCHORS_PY="${ANCHORS_PY:-python3}"
SHARED="${SHARED:-../shared}"
NODAL="${NODAL:-target/release/nodal}"
RAW_DIR="${RAW_DIR:-$(mktemp -d)}"
mkdir -p "$RAW_DIR"
export ANCHORS_DATA="${ANCHORS_DATA:-$SHARED/reference}"
if [ "$MODE" = full ]; then BATCHES=1,64,1024; METHODS=euler,midpoint,euler_heun; else BATCHES=1,1024; METHODS=euler,midpoint; fi

run_nodal() {
  echo "# $(date -u +%FT%TZ) nodal" >&2
  "$NODAL" bench-sde --reference "$SHARED/reference" --dims 2,64 --batches "$BATCHES" --methods "$METHODS" \
      --repeats 5 >> "$RAW_DIR/nodal.jsonl"
}
run_nodal
for backend in torch jax; do
  echo "# $(date -u +%FT%TZ) $backend" >&2
  "$ANCHORS_PY" "$SHARED/anchors/sde_bench.py" --backend "$backend" --dims 2,64 --batches "$BATCHES" \
      --methods "$METHODS" --min_reps 2 --max_reps 3 --min_time 2 >> "$RAW_DIR/anchors.jsonl"
done
run_nodal
echo "# raw results in $RAW_DIR" >&2
python3 bench/join_sde.py "$RAW_DIR"/nodal.jsonl "$RAW_DIR"/anchors.jsonl
