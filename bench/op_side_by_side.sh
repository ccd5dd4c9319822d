#!/usr/bin/env bash
# Per-op timings of the MNIST models' layers (convolutions and group norms at batch 128, forward
# and forward + backward), nodal's flex backend beside PyTorch, interleaved rounds on this
# machine. JSON lines go to bench/results/op_side_by_side.jsonl and a markdown table (medians
# over the rounds) to stdout.
# Usage: bench/op_side_by_side.sh [ROUNDS] [REPEATS]      (default 2 rounds of 30 timed calls)
# OP_BENCH=binary[,label] ... (comma-separated pairs joined by spaces) times other builds of
# the example too, e.g. OP_BENCH="target/release/examples/op_bench,before other/op_bench,after".
# PYTHON is the anchors' interpreter (default $HOME/.venvs/anchors/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
repeats="${2:-30}"
python="${PYTHON:-$HOME/.venvs/anchors/bin/python}"
if [ -z "${OP_BENCH:-}" ]; then
  cargo build --release -q -p nodal-experiments --example op_bench
  OP_BENCH="target/release/examples/op_bench,nodal"
fi
mkdir -p bench/results
out=bench/results/op_side_by_side.jsonl
: > "$out"
for r in $(seq 1 "$rounds"); do
  for pair in $OP_BENCH; do
    bin="${pair%%,*}"; label="${pair#*,}"
    "$bin" --repeats "$repeats" | python3 -c "import sys,json
for l in sys.stdin:
    d=json.loads(l); d['side']='$label' if d['side']=='nodal' else '$label '+d['side']; d['round']=$r; print(json.dumps(d))" >> "$out"
  done
  "$python" bench/op_bench_torch.py --repeats "$repeats" | python3 -c "import sys,json
for l in sys.stdin:
    d=json.loads(l); d['round']=$r; print(json.dumps(d))" >> "$out"
done
python3 - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
sides = list(dict.fromkeys(r["side"] for r in rows))
ops = list(dict.fromkeys((r["op"], r["mode"]) for r in rows))
ms = {}
for r in rows:
    ms.setdefault((r["side"], r["op"], r["mode"]), []).append(r["ms"])
others = [s for s in sides if s != "torch"]
head = "| op | mode | " + " | ".join(f"{s} ms" for s in sides) + " | " + " | ".join(f"{s} / torch" for s in others) + " |"
print(head)
print("|" + "---|" * (2 + len(sides) + len(others)))
for op, mode in ops:
    med = {s: statistics.median(ms[(s, op, mode)]) for s in sides if (s, op, mode) in ms}
    cells = [f"{med[s]:.2f}" if s in med else "-" for s in sides]
    ratios = [f"{med[s] / med['torch']:.2f}" if s in med and "torch" in med else "-" for s in others]
    print(f"| {op} | {mode} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
PY
