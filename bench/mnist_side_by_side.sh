#!/usr/bin/env bash
# MNIST training step, nodal beside PyTorch + torchdiffeq (../shared/anchors/mnist_torch.py: the
# same layers, parameter counts and data), ResNet, RK-Net and ODE-Net at batch 128, interleaved
# rounds on this machine. nodal: mean ms per batch of `nodal train mnist` over STEPS batches
# (first included); PyTorch: median of STEPS steps after 2 warm-up steps. JSON lines go to
# bench/results/mnist_side_by_side.jsonl and a markdown table (medians over rounds) to stdout.
# Usage: bench/mnist_side_by_side.sh [ROUNDS] [STEPS]     (default 2 rounds of 10 steps)
# NODAL="binary,label ..." times other builds too (default target/release/nodal,nodal).
# ANCHORS is the anchors folder (default ../shared/anchors), PYTHON its interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
steps="${2:-10}"
anchors="${ANCHORS:-../shared/anchors}"
python="${PYTHON:-$HOME/.venvs/anchors/bin/python}"
if [ -z "${NODAL:-}" ]; then
  cargo build --release -q --bin nodal
  NODAL="target/release/nodal,nodal"
fi
mkdir -p bench/results
out=bench/results/mnist_side_by_side.jsonl
: > "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  for model in resnet rknet odenet; do
    for pair in $NODAL; do
      bin="${pair%%,*}"; label="${pair#*,}"
      rm -rf "$tmp/run"
      "$bin" train mnist --model "$model" --epochs 1 --limit-train $((128 * steps)) --limit-test 128 --quiet \
        --out "$tmp/run" > "$tmp/summary.json"
      python3 - "$tmp/summary.json" "$label" "$model" "$r" >> "$out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            x = find(v, k)
            if x is not None: return x
    if isinstance(o, list):
        for v in o:
            x = find(v, k)
            if x is not None: return x
print(json.dumps({"side": sys.argv[2], "model": sys.argv[3], "round": int(sys.argv[4]),
                  "ms": find(s, "ms_per_batch"), "nfe_forward": find(s, "nfe_forward"),
                  "peak_rss_mib": find(s, "peak_rss_mib")}))
PY
    done
    "$python" "$anchors/mnist_torch.py" train --model "$model" --steps "$steps" --warmup 2 > "$tmp/torch.jsonl"
    python3 - "$tmp/torch.jsonl" "$model" "$r" >> "$out" <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
print(json.dumps({"side": "torch", "model": sys.argv[2], "round": int(sys.argv[3]), "ms": s["median_ms"],
                  "nfe_forward": s["median_nfe_f"], "peak_rss_mib": s["peak_rss_mib"]}))
PY
  done
done
python3 - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
sides = list(dict.fromkeys(r["side"] for r in rows))
others = [s for s in sides if s != "torch"]
print("| step, batch 128 | " + " | ".join(f"{s} ms" for s in sides) + " | " + " | ".join(f"{s} / torch" for s in others) + " |")
print("|" + "---|" * (1 + len(sides) + len(others)))
for model in ["resnet", "rknet", "odenet"]:
    med = {s: statistics.median([r["ms"] for r in rows if r["side"] == s and r["model"] == model]) for s in sides}
    print(f"| {model} | " + " | ".join(f"{med[s]:.0f}" for s in sides) + " | " + " | ".join(f"{med[s] / med['torch']:.2f}" for s in others) + " |")
PY
