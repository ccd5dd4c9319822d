#!/usr/bin/env bash
# Latent ODE training time per epoch, nodal against PyTorch + torchdiffeq, in one run: the same
# model (2665 parameters), data (1000 periodic series, keep 0.3), batch (50), optimiser (Adam
# 1e-2) and solver (RK4, one step per grid interval), two threads each; two interleaved runs a
# side of EPOCHS epochs, medians of the epoch times.
#
#   bash bench/latent_ode_side_by_side.sh [EPOCHS] [PYTHON]
#
# PYTHON is an interpreter with torch and torchdiffeq (see ../shared/anchors for the set-up).
set -euo pipefail
epochs=${1:-5}
py=${2:-${PYTHON:-python3}}
bin=${NODAL:-target/release/nodal}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAYON_NUM_THREADS=2
for round in 1 2; do
  "$py" bench/latent_ode_torch.py --epochs "$epochs" --threads 2 --seed "$round" | tail -1 > "$tmp/torch$round.json"
  "$bin" train latent-ode --epochs "$epochs" --seed "$round" --quiet --no-fig --out "$tmp/nodal$round" >/dev/null
  cp "$tmp/nodal$round/metrics.jsonl" "$tmp/nodal$round.jsonl"
  cp "$tmp/nodal$round/summary.json" "$tmp/nodal$round.summary.json"
done
"$py" - "$tmp" <<'PY'
import json, statistics, sys
d = sys.argv[1]
torch = []
nodal = []
params = {}
for r in (1, 2):
    t = json.load(open(f"{d}/torch{r}.json"))
    torch += t["epoch_seconds"]
    params["torch"] = t["params"]
    nodal += [json.loads(l)["seconds"] for l in open(f"{d}/nodal{r}.jsonl")]
    params["nodal"] = json.load(open(f"{d}/nodal{r}.summary.json"))["params"]
mt, mn = statistics.median(torch), statistics.median(nodal)
print(json.dumps({"epochs_per_side": len(torch), "torch_median_epoch_s": round(mt, 3), "nodal_median_epoch_s": round(mn, 3),
                  "nodal_over_torch": round(mn / mt, 3), "params": params}))
PY
