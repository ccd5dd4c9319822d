#!/usr/bin/env bash
# Memory of one MNIST training step vs depth / solver steps (Chen et al. 2018, Table 1's memory
# column): ResNet with 0..24 residual blocks, RK-Net with 4..32 RK4 steps (backprop through the
# steps), ODE-Net (dopri5) from loose to tight tolerances with the adjoint (O(1) memory), with
# backprop through the solver and with checkpointing.
#
# Each row is one fresh `nodal memory` process: batch 128 of seeded random images, the stem's
# features computed first and detached, one warm-up step, then the peak resident set size (VmHWM,
# reset just before the step) minus the resident size before it. MALLOC_MMAP_THRESHOLD_ pins
# glibc's mmap threshold so that freed large buffers leave the resident set (otherwise memory
# freed by the warm-up step is reused silently and growth does not show).
#
# Usage: NODAL=target/release/nodal bench/mnist_memory.sh > docs/mnist-memory.md
set -euo pipefail
NODAL=${NODAL:-target/release/nodal}
export MALLOC_MMAP_THRESHOLD_=131072
row() { # label, args...
  local label=$1; shift
  "$NODAL" memory "$@" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(f\"| $label | {s['nfe_forward']} | {s['nfe_backward']} | {s['step_mib']:.1f} | {s['seconds']:.2f} |\")"
}
echo "Memory of one MNIST training step (\`bench/mnist_memory.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)); batch 128, f32."
echo
echo "| model and setting | forward evaluations | backward evaluations + VJPs | step memory MiB (peak - before) | step seconds |"
echo "|---|---:|---:|---:|---:|"
for b in 0 3 6 12 24; do row "ResNet, $b residual blocks" --model resnet --blocks "$b"; done
for h in 0.25 0.125 0.0625 0.03125; do row "RK-Net, RK4 step $h (backprop)" --model rknet --rk4-step "$h"; done
for g in adjoint backprop checkpoint; do
  for t in 1e-1 1e-3 1e-5 1e-7; do row "ODE-Net, dopri5 rtol=atol=$t, $g" --model odenet --rtol "$t" --atol "$t" --grad "$g"; done
done
# The DEQ at a forced number of forward iterations (rtol 0: every row runs to the cap, and the
# backward solve likewise), against the weight-tied network unrolled to the same depth.
for n in 5 10 20 40; do row "DEQ, $n forward iterations (Anderson, implicit gradient)" --model deq --deq-rtol 0 --deq-max-iter "$n"; done
for n in 5 10 20 40; do row "Weight-tied cell unrolled $n times (backprop)" --model tied --depth "$n"; done
