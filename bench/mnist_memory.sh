#!/usr/bin/env bash
# Peak memory of MNIST training vs depth / number of solver steps (Chen et al. 2018, Table 1's
# memory column): ResNet with 0..12 residual blocks, RK-Net with 4..16 RK4 steps (backprop),
# ODE-Net (dopri5) at looser to tighter tolerances with the adjoint (O(1) memory) and with
# backprop through the solver (memory grows with the steps).
#
# Each configuration is one fresh `nodal train mnist` process on the first 384 training images
# (3 batches of 128) and 128 test images; peak = the trainer's own peak resident set size
# (VmHWM), which includes the loaded dataset (a constant offset, see the 0-block ResNet row).
#
# Usage: NODAL=target/release/nodal DATA=../shared/data/mnist bench/mnist_memory.sh > docs/mnist-memory.md
set -euo pipefail
NODAL=${NODAL:-target/release/nodal}
DATA=${DATA:-../shared/data/mnist}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
run() { # label, args...
  local label=$1; shift
  local out="$TMP/run"
  rm -rf "$out"
  "$NODAL" train mnist "$@" --data "$DATA" --limit-train 384 --limit-test 128 --epochs 1 --checkpoint-every 0 --quiet --out "$out" >/dev/null 2>&1
  python3 - "$label" "$out/summary.json" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))
fwd = s.get("nfe_forward") or 0
bwd = s.get("nfe_backward") or 0
print(f"| {label} | {s['params']:,} | {fwd:g} | {bwd:g} | {s['peak_rss_mib']:.0f} | {s['ms_per_batch']:.0f} |")
PY
}
echo "Peak memory of MNIST training vs depth and solver steps (\`bench/mnist_memory.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| configuration | parameters | forward evaluations per batch | backward evaluations per batch | peak RSS MiB | ms per batch |"
echo "|---|---:|---:|---:|---:|---:|"
for b in 0 3 6 12; do run "ResNet, $b residual blocks" --model resnet --blocks "$b"; done
for h in 0.25 0.125 0.0625; do run "RK-Net, RK4 step $h (backprop)" --model rknet --rk4-step "$h"; done
for t in 1e-1 1e-3 1e-5; do run "ODE-Net, dopri5 rtol=atol=$t, adjoint" --model odenet --rtol "$t" --atol "$t" --grad adjoint; done
for t in 1e-1 1e-3 1e-5; do run "ODE-Net, dopri5 rtol=atol=$t, backprop" --model odenet --rtol "$t" --atol "$t" --grad backprop; done
