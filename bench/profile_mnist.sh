#!/usr/bin/env bash
# Where a nodal MNIST training step spends its time: `perf record` over 10 batches of `nodal train
# mnist`, then the samples grouped by kernel (direct and im2col convolutions, GEMM, group norm,
# flex's element-wise ops, memory copies and zeroing, page faults and the kernel's scheduler).
# Usage: bench/profile_mnist.sh [MODEL] [BATCHES]      (default rknet, 10)
# NODAL is the binary (default target/release/nodal); DATA the MNIST folder (../shared/data/mnist).
# Needs `perf` (linux-perf); prints a markdown table of shares to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-rknet}"
batches="${2:-10}"
nodal="${NODAL:-target/release/nodal}"
data="${DATA:-../shared/data/mnist}"
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perf record -q -F 999 -o "$tmp/perf.data" "$nodal" train mnist --model "$model" --epochs 1 \
  --limit-train $((128 * batches)) --limit-test 128 --quiet --out "$tmp/run" --data "$data" >/dev/null 2>&1
perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null | python3 -c '
import re, sys
groups = [
    ("direct convolution (forward, input gradient)", r"direct_conv::x86::forward"),
    ("direct convolution (weight gradient)", r"direct_conv::x86::weight"),
    ("GEMM (gemm crate: im2col convolutions, linear layers)", r"gemm_f32|gemm_common|microkernel"),
    ("group norm kernel", r"group_norm"),
    ("layout copies, im2col / col2im, flex element-wise (closures)", r"call_mut|direct_conv::|conv2d::|burn_flex|flex::"),
    ("memory copies and zeroing", r"memmove|memset|memcpy"),
    ("page faults, allocator, kernel scheduler", r"\[k\]|malloc|free|_int_|page"),
]
shares = {g: 0.0 for g, _ in groups}
other = 0.0
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+(.*)", line)
    if not m:
        continue
    pct, sym = float(m.group(1)), m.group(2)
    for g, pat in groups:
        if re.search(pat, sym):
            shares[g] += pct
            break
    else:
        other += pct
print("| share of samples | % |")
print("|---|---:|")
for g, _ in groups:
    print(f"| {g} | {shares[g]:.1f} |")
print(f"| everything else | {other:.1f} |")
'
