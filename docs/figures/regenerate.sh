#!/usr/bin/env bash
# Regenerate every figure in docs/figures with the commands and settings the docs give.
# Usage: bash docs/figures/regenerate.sh [WORK_DIR]   (about 7 minutes on 2 cores)
# Runs from the repository root; needs the release binary (cargo build --release) and the MNIST
# files in ../shared/data/mnist (or NODAL_MNIST=DIR) for the two MNIST figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-runs/figures}
nodal=./target/release/nodal
mnist=${NODAL_MNIST:-../shared/data/mnist}
figs=docs/figures
mkdir -p "$work"

$nodal train spiral --quiet --out "$work/spiral" > /dev/null
cp "$work/spiral/trajectories.png" $figs/spiral_trajectories.png
cp "$work/spiral/phase.png" $figs/spiral_phase.png
cp "$work/spiral/vector_field.png" $figs/spiral_vector_field.png

$nodal sweep --task spiral --weights "$work/spiral/model.safetensors" --rtol 1e-2,1e-3,1e-4,1e-5,1e-6,1e-7,1e-8 \
  --method dopri5,bosh3,tsit5 --out "$work/sweep-spiral" > /dev/null
cp "$work/sweep-spiral/sweep.png" $figs/sweep_spiral.png

$nodal plot trajectories --out "$work/trajectories" > /dev/null
for f in flow1d dupont1d_trajectories dupont1d_training circles_flow circles_training; do
  cp "$work/trajectories/$f.png" $figs/$f.png
done

$nodal regularise --task circles --out "$work/regularise-circles" > /dev/null
cp "$work/regularise-circles/regularise.png" $figs/regularise_circles.png
$nodal regularise --task spiral --out "$work/regularise-spiral" > /dev/null
cp "$work/regularise-spiral/regularise.png" $figs/regularise_spiral.png

$nodal plot reconstruction --out "$work/reconstruction" > /dev/null
cp "$work/reconstruction/reconstruction.png" $figs/reconstruction.png

$nodal plot homeomorphism --out "$work/homeomorphism" > /dev/null
for t in star letter figure-eight; do
  cp "$work/homeomorphism/homeomorphism_$t.png" $figs/homeomorphism_$t.png
done

$nodal plot mnist-states --weights models/mnist-odenet.safetensors --data "$mnist" --out "$work/mnist-states" > /dev/null
cp "$work/mnist-states/mnist_states.png" $figs/mnist_states_odenet.png
$nodal sweep --task mnist --weights models/mnist-odenet.safetensors --data "$mnist" \
  --rtol 1e-5,1e-4,1e-3,1e-2,1e-1,1,10 --atol-ratio 1 --method dopri5,bosh3 --limit-test 2000 --quiet \
  --out "$work/sweep-mnist" > /dev/null
cp "$work/sweep-mnist/sweep.png" $figs/sweep_mnist_odenet.png
echo "regenerated $(ls $figs/*.png | wc -l) figures in $figs (outputs in $work)"
