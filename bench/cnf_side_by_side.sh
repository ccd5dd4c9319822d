#!/usr/bin/env bash
# CNF toys side by side with the torchdiffeq anchor (../shared/anchors/cnf_toys.py), one thread
# each, run one after another on the same machine.
#
#   bash bench/cnf_side_by_side.sh speed   ITERS   # ms/iter: anchor vs nodal fused vs nodal module
#   bash bench/cnf_side_by_side.sh quality          # 1000-iteration nodal runs: exact, Hutchinson, RNODE
#
# Needs the anchors' venv ($HOME/.venvs/anchors, see ../shared/anchors/README.md) for `speed`.
# Results go to runs/cnf-bench/ (JSON lines per run); bench/join_cnf.py makes the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-speed}
iters=${2:-200}
out=runs/cnf-bench
mkdir -p "$out"
nodal=./target/release/nodal
anchors=${ANCHORS_DIR:-../shared/anchors}
py=${ANCHORS_PY:-$HOME/.venvs/anchors/bin/python}
if [ "$mode" = speed ]; then
  for data in 8gaussians moons; do
    for trace in exact hutch; do
      ntrace=$trace; [ "$trace" = hutch ] && ntrace=hutchinson
      for rep in 1 2; do
        ANCHORS_THREADS=1 ANCHORS_OUT=$out/fig "$py" "$anchors/cnf_toys.py" --data $data --trace $trace --iters "$iters" \
          --block "$iters" --n_test 2000 --no_fig > "$out/anchor_${data}_${trace}_$rep.jsonl"
        for run in fused:1 fused:2 module:1; do
          engine=${run%:*}; threads=${run#*:}
          $nodal train cnf --data $data --trace $ntrace --iters "$iters" --engine $engine --threads $threads --n-test 2000 \
            --no-fig --quiet --out "$out/nodal_${engine}${threads}_${data}_${trace}_$rep" > /dev/null
        done
      done
    done
  done
elif [ "$mode" = quality ]; then
  for data in 8gaussians moons; do
    $nodal train cnf --data $data --trace exact --out "$out/q_${data}_exact" --quiet
    $nodal train cnf --data $data --trace hutchinson --out "$out/q_${data}_hutchinson" --quiet
    $nodal train cnf --data $data --trace exact --kinetic 0.1 --jacobian 0.1 --out "$out/q_${data}_rnode" --quiet
  done
fi
