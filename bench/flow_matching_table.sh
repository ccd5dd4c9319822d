#!/usr/bin/env bash
# NFE against sample quality for flow-matching weights: `nodal eval flow-matching` over fixed-step
# and adaptive samplers on the same noise (seed 0), N samples each (300 by default), scored by the committed MNIST
# classifier against the full test set. JSON lines go to bench/results/flow_matching_table.jsonl
# and a markdown table to stdout.
# Usage: bench/flow_matching_table.sh [WEIGHTS] [N]   (default models/mnist-flow-matching.safetensors, 300)
# NODAL=path uses that binary instead of building target/release/nodal.
set -euo pipefail
cd "$(dirname "$0")/.."
weights="${1:-models/mnist-flow-matching.safetensors}"
n="${2:-300}"
nodal="${NODAL:-target/release/nodal}"
[ -n "${NODAL:-}" ] || cargo build --release --bin nodal -q
mkdir -p bench/results
out=bench/results/flow_matching_table.jsonl
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
configs=(
  "--method euler --steps 2"
  "--method euler --steps 5"
  "--method euler --steps 10"
  "--method euler --steps 20"
  "--method midpoint --steps 5"
  "--method midpoint --steps 10"
  "--method rk4 --steps 3"
  "--method rk4 --steps 5"
  "--method rk4 --steps 10"
  "--method dopri5 --rtol 1e-2 --atol 1e-2"
  "--method dopri5 --rtol 1e-3 --atol 1e-3"
  "--method dopri5 --rtol 1e-5 --atol 1e-5"
  "--method tsit5 --rtol 1e-3 --atol 1e-3"
)
for c in "${configs[@]}"; do
  # shellcheck disable=SC2086
  "$nodal" eval flow-matching --weights "$weights" --n "$n" --seed 0 --quiet $c >> "$tmp"
done
mv "$tmp" "$out"
trap - EXIT
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| sampler | NFE | confident share | classes within 2x | Frechet distance | sampling s |")
print("|---|---:|---:|---|---:|---:|")
for r in rows:
    s = f"{r['method']} {r['steps']} steps" if r["steps"] else f"{r['method']} rtol {r['rtol']:g}"
    print(f"| {s} | {r['nfe']:.1f} | {r['confident_share']:.3f} | {'yes' if r['classes_within_2x_uniform'] else 'no'} | {r['frechet_distance']:.3f} | {r['sample_seconds']:.1f} |")
PY
