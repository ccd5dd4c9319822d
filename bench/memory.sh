#!/usr/bin/env bash
# Peak memory vs number of rk4 steps: `nodal solve` (forward only, backprop, checkpoint, adjoint)
# and the anchors' memory.py (torchdiffeq direct and adjoint), one process at a time.
#
#   bench/memory.sh
#
# Problem (as memory.py): MLP mlp_d64_h256.json, y0 = first 1024 rows of mlp_y0_d64.json, float32,
# rk4 on t = [0, 1] with step 1/N, N in $STEPS.  Peak RSS from /usr/bin/time -v
# ("Maximum resident set size"); install it with `apt-get install -y time` if missing.
# nodal's gradient is of its own loss (sum of squares of y at t=0 and t=1), with no optimizer step;
# memory.py's step is loss = mean(y(1)^2), backward, RMSprop step (see the note in the table).
#
# Environment (paths relative to the repository root, where the script cd's to):
#   ANCHORS_PY  python with torch, torchdiffeq                 (default: python3)
#   SHARED      the shared folder                              (default: ../shared)
#   NODAL       the nodal binary                               (default: target/release/nodal)
#   STEPS       comma-separated N                              (default: 10,100,1000)
#   RAW_DIR     where raw outputs are kept                     (default: a new temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHORS_PY="${ANCHORS_PY:-python3}"
SHARED="${SHARED:-../shared}"
NODAL="${NODAL:-target/release/nodal}"
STEPS="${STEPS:-10,100,1000}"
RAW_DIR="${RAW_DIR:-$(mktemp -d)}"
mkdir -p "$RAW_DIR"
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time: apt-get install -y time" >&2; exit 1; }
PROB_DIR="$(mktemp -d)"
trap 'rm -rf "$PROB_DIR"' EXIT
python3 bench/make_memory_problems.py "$SHARED/reference" "$PROB_DIR" ${STEPS//,/ }

echo "# $(date -u +%FT%TZ) nodal | $(uptime)" >&2
: > "$RAW_DIR/nodal.jsonl"
for n in ${STEPS//,/ }; do
  for g in none backprop checkpoint adjoint; do
    args=()
    [ "$g" != none ] && args=(--grad "$g")
    /usr/bin/time -v "$NODAL" solve "$PROB_DIR/rk4_$n.json" "${args[@]}" > "$RAW_DIR/out.json" 2> "$RAW_DIR/time.txt"
    python3 - "$n" "$g" "$RAW_DIR/out.json" "$RAW_DIR/time.txt" >> "$RAW_DIR/nodal.jsonl" <<'PY'
import json, re, sys
n, g, out, tv = sys.argv[1:]
d = json.load(open(out))
t = open(tv).read()
kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(json.dumps({"tool": "nodal", "grad": g, "steps": int(n), "time_v_max_rss_mib": kib / 1024,
                  "stats": d.get("stats"), "backward_stats": d.get("backward_stats"),
                  "seconds": d.get("seconds"), "backward_seconds": d.get("backward_seconds")}))
PY
  done
done
rm -f "$RAW_DIR/out.json" "$RAW_DIR/time.txt"
echo "# $(date -u +%FT%TZ) torchdiffeq memory.py | $(uptime)" >&2
"$ANCHORS_PY" "$SHARED/anchors/memory.py" --step_list "$STEPS" > "$RAW_DIR/anchors_memory.jsonl"
echo "# $(date -u +%FT%TZ) done | $(uptime)" >&2
echo "# raw outputs in $RAW_DIR" >&2
python3 bench/join_memory.py "$RAW_DIR/nodal.jsonl" "$RAW_DIR/anchors_memory.jsonl"
