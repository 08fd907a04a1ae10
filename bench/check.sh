#!/usr/bin/env bash
# Benchmark: whole-process time of `mlx check` on each example (schema reads included).
# Usage: bench/check.sh [RUNS]   (default 50 runs per file)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
cargo build --release --quiet
bin=target/release/mlx
printf '%-28s %10s %10s\n' file "mean ms" "min ms"
for f in examples/*.mlx; do
  "$bin" check "$f" 2>/dev/null || { echo "$f does not check" >&2; exit 1; }
  total=0; min=999999999
  for _ in $(seq "$runs"); do
    t0=$(date +%s%N); "$bin" check "$f" 2>/dev/null; t1=$(date +%s%N)
    d=$(( (t1 - t0) / 1000 )); total=$(( total + d )); (( d < min )) && min=$d
  done
  awk -v f="$f" -v t="$total" -v n="$runs" -v m="$min" 'BEGIN { printf "%-28s %10.2f %10.2f\n", f, t / n / 1000, m / 1000 }'
done
