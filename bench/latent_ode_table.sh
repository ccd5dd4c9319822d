#!/usr/bin/env bash
# The latent ODE table: latent ODE, ODE-RNN and GRU-with-gaps on both data sets at three
# keep-rates, three seeds each (54 runs of `nodal train latent-ode`, default settings), then
# the table of held-out interpolation and extrapolation MSE (mean ± standard deviation).
#
#   bash bench/latent_ode_table.sh [OUT_DIR] [JOBS] [EPOCHS]
#
# Runs JOBS trainings at once (default 2). Needs a release build of the CLI.
set -euo pipefail
out=${1:-runs/latent-ode-table}
jobs=${2:-2}
epochs=${3:-40}
bin=${NODAL:-target/release/nodal}
mkdir -p "$out"
for data in periodic pendulum; do
  for keep in 0.1 0.3 0.5; do
    for model in latent-ode ode-rnn gru; do
      for seed in 0 1 2; do
        echo "$data $keep $model $seed"
      done
    done
  done
done | xargs -P "$jobs" -L 1 bash -c '
  d="'"$out"'/$0-keep$1-$2-s$3"
  [ -f "$d/summary.json" ] || "'"$bin"'" train latent-ode --data "$0" --keep "$1" --model "$2" --seed "$3" --epochs '"$epochs"' --quiet --no-fig --out "$d" >/dev/null'
python3 bench/join_latent_ode.py "$out"
