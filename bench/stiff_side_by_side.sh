#!/usr/bin/env bash
# The stiff test set (Robertson, Van der Pol mu = 1000, HIRES, OREGO), nodal's implicit methods
# against scipy's Radau and BDF and diffrax's Kvaerno5 in one run, with explicit methods for
# contrast: steps, rejections, evaluations, Jacobians, LU factorisations, error against the
# reference values (bench/stiff_reference.json) and time.
#
#   bench/stiff_side_by_side.sh [RTOL] [ATOL]     (defaults 1e-6 and 1e-10)
#
# nodal: `nodal stiff` for kvaerno3, kvaerno5, rodas5, and dopri5 capped at 200,000 steps.
# Anchors: bench/stiff_anchors.py (scipy with finite-difference Jacobians, as a user would run
# it; diffrax timed after compilation; explicit runs capped at 200,000 steps or 60 s).
# Prints JSON lines to $RAW_DIR, then a markdown table (bench/join_stiff.py).
#
# Environment (paths relative to the repository root, where the script cd's to):
#   ANCHORS_PY  python with numpy, scipy, jax, diffrax  (default: python3)
#   NODAL       the nodal binary                        (default: target/release/nodal)
#   REPEATS     timed repeats per run, median reported  (default: 3)
set -euo pipefail
cd "$(dirname "$0")/.."
RTOL="${1:-1e-6}"
ATOL="${2:-1e-10}"
ANCHORS_PY="${ANCHORS_PY:-python3}"
NODAL="${NODAL:-target/release/nodal}"
REPEATS="${REPEATS:-3}"
RAW_DIR="${RAW_DIR:-$(mktemp -d)}"
echo "raw JSON lines in $RAW_DIR; load: $(uptime)" >&2
NODAL_LINES="$RAW_DIR/nodal.jsonl"
: > "$NODAL_LINES"
for p in robertson vdp1000 hires orego; do
  for m in kvaerno3 kvaerno5 rodas5; do
    "$NODAL" stiff --problem "$p" --method "$m" --rtol "$RTOL" --atol "$ATOL" --repeats "$REPEATS" >> "$NODAL_LINES"
  done
  # Explicit contrast: runs out of steps on the stiff ones (exit 1, the line says how far it got).
  "$NODAL" stiff --problem "$p" --method dopri5 --rtol "$RTOL" --atol "$ATOL" --max-steps 200000 --repeats 1 >> "$NODAL_LINES" || true
done
"$ANCHORS_PY" bench/stiff_anchors.py --problem all --rtol "$RTOL" --atol "$ATOL" --repeats "$REPEATS" --time-cap 20 > "$RAW_DIR/anchors.jsonl"
echo "load after: $(uptime)" >&2
python3 bench/join_stiff.py "$NODAL_LINES" "$RAW_DIR/anchors.jsonl"
