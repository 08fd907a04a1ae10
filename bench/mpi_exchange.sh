#!/usr/bin/env bash
# Benchmark: data-parallel training over MPI. For the Fashion MLP and LeNet (one epoch, batch
# 128 cut into 6 shards), on 1 process (no MPI) and under `mpirun -np 2` and `-np 3`, it reports
# the time per step each rank spends computing (its shards' gradients and the update) and
# exchanging (the all-gather of the shards' gradients, including the wait for the slowest rank),
# the bytes gathered per step, and the whole-process wall time; it also checks the runs' models
# are the same bytes. The machine's cores are divided between the ranks (MLX_THREADS).
# Usage: bench/mpi_exchange.sh [EPOCHS]   (needs Open MPI and the Fashion-MNIST package;
# MLX_BIN=path skips the release build, which needs `--features mpi`)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-1}
if [ -z "${MLX_BIN:-}" ]; then
  cargo build --release --quiet --features mpi
fi
bin=${MLX_BIN:-$PWD/target/release/mlx}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
printf '%-14s %5s %12s %13s %12s %9s %s\n' model ranks "compute ms" "exchange ms" "KiB/step" "wall s" "model"
for model in fashion_mlp fashion_lenet; do
  ref=""
  for np in 1 2 3; do
    out="$work/$model-$np"
    launcher=()
    if [ "$np" -gt 1 ]; then
      launcher=(mpirun -np "$np" -x MLX_THREADS)
    fi
    # The machine's cores shared between the ranks (at least one thread each).
    threads=$(($(nproc) / np))
    export MLX_THREADS=$((threads > 0 ? threads : 1))
    start=$(date +%s.%N)
    "${launcher[@]}" "$bin" run "examples/$model.mlx" --set shards=6 --set "epochs=$epochs" \
      --no-plot --out "$out" >"$out.stdout" 2>"$out.stderr"
    end=$(date +%s.%N)
    line=$(grep '^data-parallel:' "$out.stderr")
    compute=$(sed -E 's/.*: ([0-9.]+) ms computing.*/\1/' <<<"$line")
    exchange=$(sed -E 's/.* ([0-9.]+) ms exchanging.*/\1/' <<<"$line")
    kib=$(sed -E 's/.*\(([0-9.]+) KiB gathered\).*/\1/' <<<"$line")
    dir=$(tail -n1 "$out.stdout")
    sum=$(sha256sum "$dir/model.safetensors" | cut -c1-12)
    if [ -z "$ref" ]; then
      ref=$sum
      same="$sum"
    elif [ "$sum" = "$ref" ]; then
      same="$sum (same)"
    else
      same="$sum (DIFFERS)"
    fi
    printf '%-14s %5s %12s %13s %12s %9.1f %s\n' "$model" "$np" "$compute" "$exchange" "$kib" \
      "$(echo "$end - $start" | bc)" "$same"
  done
done
