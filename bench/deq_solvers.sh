#!/usr/bin/env bash
# Forward and backward iterations of the MNIST DEQ's root solvers on real images with the trained
# weights (models/mnist-deq.safetensors).
#
# Test set: `nodal eval mnist` with each solver and tolerance (the first 2000 test images,
# batches of 500): mean iterations per row, the share of rows that hit the cap, accuracy and
# seconds, at the training setting (cap 30) and with a cap of 100. Training: 10 steps of batch 128 started from the trained weights at
# a learning rate of 1e-12 (the weights do not move), reporting the mean forward iterations and
# backward-solve iterations per row, the share of rows at the forward cap and milliseconds per step.
#
# Usage: NODAL=target/release/nodal bench/deq_solvers.sh > docs/deq-solvers.md
set -euo pipefail
NODAL=${NODAL:-target/release/nodal}
W=${W:-models/mnist-deq.safetensors}
DATA=${DATA:-../shared/data/mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "MNIST DEQ root solvers (\`bench/deq_solvers.sh\`, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg))."
echo
echo "Test set (first 2000 images, batches of 500):"
echo
echo "| solver | rtol | cap | iterations per row | rows at the cap | test accuracy | seconds |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for rc in 1e-2:30 1e-2:100 1e-3:100; do
  r=${rc%:*}; c=${rc#*:}
  for s in picard anderson broyden; do
    "$NODAL" eval mnist --weights "$W" --data "$DATA" --limit-test 2000 --solver "$s" --deq-rtol "$r" --deq-max-iter "$c" --quiet | python3 -c "
import json, sys
j = json.load(sys.stdin)
print(f\"| $s | $r | $c | {j['row_iterations']:.1f} | {100 * j['unconverged_share']:.1f}% | {100 * j['accuracy']:.2f}% | {j['seconds']:.1f} |\")"
  done
done
echo
echo "Training steps (batch 128, 10 steps from the trained weights, rtol 1e-2, cap 30):"
echo
echo "| solver | forward iterations per row | backward iterations per row | rows at the forward cap | ms per step |"
echo "|---|---:|---:|---:|---:|"
for s in picard anderson broyden; do
  "$NODAL" train mnist --model deq --init "$W" --data "$DATA" --limit-train 1280 --limit-test 100 --epochs 1 \
    --lr 1e-12 --solver "$s" --out "$tmp/$s" --quiet --checkpoint-every 0 > /dev/null 2>&1
  python3 -c "
import json
m = [json.loads(l) for l in open('$tmp/$s/metrics.jsonl')][-1]
print(f\"| $s | {m['forward_row_iterations']:.1f} | {m['backward_row_iterations']:.1f} | {100 * m['unconverged_share']:.1f}% | {m['ms_per_batch']:.0f} |\")"
done
