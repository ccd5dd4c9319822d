#!/usr/bin/env bash
# MNIST inference over the 10,000 test images with the committed weights, nodal beside PyTorch +
# torchdiffeq (../shared/anchors/mnist_torch.py eval: the same layers, loading nodal's weights),
# batch 500 both, 2 threads each, interleaved rounds on this machine. images/s = 10,000 / the
# seconds each side reports for its evaluation loop (data already in memory). JSON lines go to
# bench/results/mnist_inference_side_by_side.jsonl and a markdown table (medians over rounds) to
# stdout.
# Usage: bench/mnist_inference_side_by_side.sh [ROUNDS]     (default 2)
# NODAL="binary,label ..." times other builds too (default target/release/nodal,nodal).
# ANCHORS is the anchors folder (default ../shared/anchors), PYTHON its interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
anchors="${ANCHORS:-../shared/anchors}"
python="${PYTHON:-$HOME/.venvs/anchors/bin/python}"
if [ -z "${NODAL:-}" ]; then
  cargo build --release -q --bin nodal
  NODAL="target/release/nodal,nodal"
fi
mkdir -p bench/results
out=bench/results/mnist_inference_side_by_side.jsonl
: > "$out"
for r in $(seq 1 "$rounds"); do
  for model in resnet rknet odenet; do
    weights="models/mnist-$model.safetensors"
    for pair in $NODAL; do
      bin="${pair%%,*}"; label="${pair#*,}"
      "$bin" eval mnist --weights "$weights" --batch-size 500 --quiet | python3 -c "import sys,json
d=json.loads(sys.stdin.readlines()[-1])
print(json.dumps({'side': '$label', 'model': '$model', 'round': $r, 'seconds': d['seconds'], 'images_per_s': d['examples'] / d['seconds'], 'accuracy': d['accuracy'], 'nfe': d['nfe']}))" >> "$out"
    done
    "$python" "$anchors/mnist_torch.py" eval --model "$model" --weights "$weights" --batch 500 | python3 -c "import sys,json
d=json.loads(sys.stdin.readlines()[-1])
print(json.dumps({'side': 'torch', 'model': '$model', 'round': $r, 'seconds': d['seconds'], 'images_per_s': d['images_per_s'], 'accuracy': d['accuracy'], 'nfe': d['nfe']}))" >> "$out"
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
sides = list(dict.fromkeys(r["side"] for r in rows))
others = [s for s in sides if s != "torch"]
ips = {}
for r in rows:
    ips.setdefault((r["side"], r["model"]), []).append(r["images_per_s"])
print("| model | " + " | ".join(f"{s} images/s" for s in sides) + " | " + " | ".join(f"{s} / torch" for s in others) + " |")
print("|" + "---|" * (1 + len(sides) + len(others)))
for m in dict.fromkeys(r["model"] for r in rows):
    med = {s: statistics.median(ips[(s, m)]) for s in sides if (s, m) in ips}
    cells = [f"{med[s]:.0f}" if s in med else "-" for s in sides]
    ratios = [f"{med[s] / med['torch']:.2f}" if s in med and "torch" in med else "-" for s in others]
    print(f"| {m} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
acc = {(r["side"], r["model"]): r["accuracy"] for r in rows}
print("accuracy: " + ", ".join(f"{s} {m} {a:.4f}" for (s, m), a in acc.items()))
PY
