#!/usr/bin/env bash
# Latent SDE training speed, nodal vs PyTorch + torchsde, the same model and sizes
# (bench/latent_sde_torchsde.py: GRU encoder, posterior/prior drifts, diagonal diffusion, Laplace
# likelihood, path KL as an extra state, Euler-Maruyama with dt = observation spacing, backprop
# through the solver, Adam; batch 256 of 100-point stochastic Lorenz series, f32).
#
#   bench/latent_sde_side_by_side.sh [ITERS] [ROUNDS]     (defaults 30 and 3)
#
# For each activation (tanh, softplus), ROUNDS interleaved rounds of: nodal, then torchsde. Each
# run reports the median ms per iteration over its iterations after the third; a row takes the
# median over rounds. Prints JSON lines, then a markdown table with the ratio nodal / torchsde.
#
# Environment (paths relative to the repository root, where the script cd's to):
#   ANCHORS_PY  python with torch and torchsde   (default: python3)
#   SHARED      the shared folder                (default: ../shared)
#   NODAL       the nodal binary                 (default: target/release/nodal)
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS="${1:-30}"
ROUNDS="${2:-3}"
ANCHORS_PY="${ANCHORS_PY:-python3}"
SHARED="${SHARED:-../shared}"
NODAL="${NODAL:-target/release/nodal}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LINES="$TMP/lines.jsonl"
for act in tanh softplus; do
  for r in $(seq "$ROUNDS"); do
    rm -rf "$TMP/run"
    "$NODAL" train latent-sde --iters "$ITERS" --activation "$act" --no-fig --quiet --out "$TMP/run" > /dev/null 2>&1
    python3 - "$TMP/run/metrics.jsonl" "$act" "$r" >> "$LINES" <<'PY'
import json, sys
ms = sorted(json.loads(l)["ms"] for l in open(sys.argv[1]).readlines()[3:])
print(json.dumps({"tool": "nodal", "activation": sys.argv[2], "round": int(sys.argv[3]), "median_ms_per_iter": ms[len(ms) // 2]}))
PY
    ANCHORS_DIR="$SHARED/anchors" "$ANCHORS_PY" bench/latent_sde_torchsde.py --iters "$ITERS" --activation "$act" \
      | python3 -c "
import json, sys
s = [json.loads(l) for l in sys.stdin if '\"summary\"' in l][-1]
print(json.dumps({'tool': 'torchsde', 'activation': '$act', 'round': $r, 'median_ms_per_iter': s['median_ms_per_iter']}))" >> "$LINES"
    tail -n 2 "$LINES"
  done
done
python3 - "$LINES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(v):
    v = sorted(v)
    return v[len(v) // 2]
print("\n| activation | nodal ms/iter | torchsde ms/iter | nodal / torchsde |\n|---|---|---|---|")
for act in ("tanh", "softplus"):
    n = med([r["median_ms_per_iter"] for r in rows if r["tool"] == "nodal" and r["activation"] == act])
    t = med([r["median_ms_per_iter"] for r in rows if r["tool"] == "torchsde" and r["activation"] == act])
    print(f"| {act} | {n:.0f} | {t:.0f} | {n / t:.2f} |")
PY
