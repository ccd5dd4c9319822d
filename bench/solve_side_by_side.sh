#!/usr/bin/env bash
# Forward-solve throughput, nodal vs the anchors (diffrax dopri5, torchdiffeq dopri5), same configs.
#
#   bench/solve_side_by_side.sh [full|key]
#
#   full (default): dims 2,64 x hidden 64,256 x batch 1,64,1024 x f32,f64
#   key:            f32 (2,64,{1,64,1024}), f32 (64,256,1024), f64 (64,256,1024)
#
# Environment (all paths relative to the repository root, where the script cd's to):
#   ANCHORS_PY  python with torch, torchdiffeq, jax, diffrax   (default: python3)
#   SHARED      the shared folder                              (default: ../shared)
#   NODAL       the nodal binary                               (default: target/release/nodal)
#   RAW_DIR     where the raw JSON lines are kept              (default: a new temp dir)
#   REPEATS     nodal bench --repeats                          (default: 20)
# Runs strictly one benchmark at a time.  Prints the markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-full}"
ANCHORS_PY="${ANCHORS_PY:-python3}"
SHARED="${SHARED:-../shared}"
NODAL="${NODAL:-target/release/nodal}"
REPEATS="${REPEATS:-20}"
RAW_DIR="${RAW_DIR:-$(mktemp -d)}"
mkdir -p "$RAW_DIR"
SB="$SHARED/anchors/solve_bench.py"
export ANCHORS_DATA="${ANCHORS_DATA:-$SHARED/reference}"

# run_set DTYPE(f32|f64) DIMS HIDDENS BATCHES
run_set() {
  local dt=$1 dims=$2 hid=$3 bat=$4 long=float32
  [ "$dt" = f64 ] && long=float64
  echo "# $(date -u +%FT%TZ) nodal $dt dims=$dims hidden=$hid batch=$bat" >&2
  "$NODAL" bench --reference "$SHARED/reference" --dims "$dims" --hidden "$hid" --batch "$bat" \
      --dtype "$long" --repeats "$REPEATS" >> "$RAW_DIR/nodal.jsonl"
  for backend in torch jax; do
    echo "# $(date -u +%FT%TZ) $backend $dt dims=$dims hidden=$hid batch=$bat" >&2
    "$ANCHORS_PY" "$SB" --backend "$backend" --dtype "$dt" --dims "$dims" --hiddens "$hid" \
        --batches "$bat" --jax_solvers dopri5 >> "$RAW_DIR/anchors_${backend}.jsonl"
  done
}

: > "$RAW_DIR/nodal.jsonl"; : > "$RAW_DIR/anchors_torch.jsonl"; : > "$RAW_DIR/anchors_jax.jsonl"
echo "# uptime before: $(uptime)" >&2
if [ "$MODE" = key ]; then
  run_set f32 2 64 1,64,1024
  run_set f32 64 256 1024
  run_set f64 64 256 1024
else
  run_set f32 2,64 64,256 1,64,1024
  run_set f64 2,64 64,256 1,64,1024
fi
echo "# uptime after: $(uptime)" >&2
echo "# raw JSON lines in $RAW_DIR" >&2
"${JOIN_PY:-python3}" bench/join_solve.py "$RAW_DIR/nodal.jsonl" "$RAW_DIR/anchors_torch.jsonl" "$RAW_DIR/anchors_jax.jsonl"
