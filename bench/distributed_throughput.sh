#!/usr/bin/env bash
# Data-parallel throughput of `nodal train mnist` with 1 and 2 processes on this machine, same
# global batch, same data, one run of each configuration per round, interleaved over rounds.
#
#   bash bench/distributed_throughput.sh [MODEL=odenet] [ROUNDS=2] [STEPS=8]
#
# Needs a build with MPI: cargo build --release -p nodal-cli --features mpi.
# Configurations (2 cores here): one process with 2 threads; two processes with 1 thread each;
# two processes with 2 threads each (oversubscribed). Prints one JSON line per run to
# bench/results/distributed_throughput.jsonl and a table of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-odenet}; rounds=${2:-2}; steps=${3:-8}
nodal=${NODAL:-target/release/nodal}
batch=128
limit=$((batch * steps))
out=bench/results/distributed_throughput.jsonl
mkdir -p bench/results
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
run() { # label procs threads
  local dir; dir=$(mktemp -d)
  local cmd=("$nodal" train mnist --model "$model" --limit-train "$limit" --limit-test 100 --batch-size "$batch" --epochs 1 --checkpoint-every 0 --out "$dir/run" --quiet)
  if [ "$2" = 1 ]; then
    RAYON_NUM_THREADS=$3 "${cmd[@]}" > "$dir/s.json" 2>/dev/null
  else
    mpirun -np "$2" --oversubscribe --bind-to none -x RAYON_NUM_THREADS="$3" "${cmd[@]}" > "$dir/s.json" 2>/dev/null
  fi
  python3 - "$1" "$2" "$3" "$dir/s.json" "$model" <<'PY' | tee -a "$out"
import json, sys
label, procs, threads, path, model = sys.argv[1:]
s = json.load(open(path))
print(json.dumps({"model": model, "config": label, "processes": int(procs), "threads_per_process": int(threads),
                  "batch": s["batch_size"], "steps": s["train_examples"] // s["batch_size"],
                  "ms_per_step": s["ms_per_batch"], "allreduce_ms_per_step": s.get("allreduce_ms_per_batch", 0.0),
                  "images_per_s": s["batch_size"] * 1000.0 / s["ms_per_batch"], "peak_rss_mib_rank0": s["peak_rss_mib"],
                  "nfe_forward": s["nfe_forward"], "nfe_backward": s["nfe_backward"]}))
PY
  rm -rf "$dir"
}
for r in $(seq "$rounds"); do
  run "1 process x 2 threads" 1 2
  run "2 processes x 1 thread" 2 1
  run "2 processes x 2 threads" 2 2
done
python3 - "$out" "$model" "$rounds" <<'PY'
import json, sys, statistics
path, model, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(path) if l.strip()]
rows = [r for r in rows if r["model"] == model][-3 * rounds:]
base = None
print(f"| {model}, global batch 128 | ms / step (median) | all-reduce ms / step | forward NFE (rank 0) | images / s | vs 1 process |")
print("|---|---:|---:|---:|---:|---:|")
for label in ["1 process x 2 threads", "2 processes x 1 thread", "2 processes x 2 threads"]:
    rs = [r for r in rows if r["config"] == label]
    ms = statistics.median(r["ms_per_step"] for r in rs)
    ar = statistics.median(r["allreduce_ms_per_step"] for r in rs)
    nfe = statistics.median(r.get("nfe_forward", float("nan")) for r in rs)
    base = base or ms
    print(f"| {label} | {ms:.0f} | {ar:.1f} | {nfe:.1f} | {128000 / ms:.0f} | {base / ms:.2f}x |")
PY
