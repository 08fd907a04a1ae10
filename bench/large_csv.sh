#!/usr/bin/env bash
# Benchmark: `mlx check` and one epoch of `mlx run` on a large generated CSV (default 4.8 M
# rows, ~200 MB: penguins-like columns, numbers and categories), reporting whole-process wall
# time and peak resident memory (GNU time), and the peak as a multiple of the file's size.
# Usage: bench/large_csv.sh [ROWS]   (needs /usr/bin/time; MLX_BIN=path skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-4800000}
if [ -z "${MLX_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${MLX_BIN:-$PWD/target/release/mlx}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$rows" "$work/big.csv" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
r = random.Random(7)
islands = ["Biscoe", "Dream", "Torgersen"]
with open(path, "w") as f:
    f.write("species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n")
    for i in range(n):
        s = r.randrange(3)
        f.write(f"{'ABC'[s]},{islands[r.randrange(3)]},{35 + 5 * s + r.random() * 5:.1f},"
                f"{14 + r.random() * 6:.1f},{180 + 10 * s + r.randrange(20)},"
                f"{3000 + 700 * s + r.randrange(1000)},{'male' if r.random() < .5 else 'female'}\n")
PY
cat > "$work/big.mlx" <<'MLX'
use std.nn
dataset big {
  source = csv("big.csv")
  split  = random(train: 0.8, val: 0.1, test: 0.1)
  features {
    bill_length_mm: Float = standardize
    bill_depth_mm: Float = standardize
    flipper_length_mm: Float = standardize
    body_mass_g: Float = standardize
    island: Category = one_hot
    sex: Category = one_hot
  }
  target species: Class[3]
}
model m(x: Float[B, F]) -> Float[B, C] { x |> dense(16) |> relu |> dense(C) }
train big_mlp { model = m  data = big  loss = cross_entropy  optimizer = adam(lr: 0.01)  epochs = 1  batch = 512 }
MLX
size=$(stat -c %s "$work/big.csv")
printf 'file: %d rows, %.1f MB\n' "$rows" "$(echo "$size / 1000000" | bc -l)"
for cmd in check run; do
  extra=(); [ "$cmd" = run ] && extra=(--out "$work/runs" -q --no-plot)
  /usr/bin/time -f '%e %M' -o "$work/t" "$bin" "$cmd" "$work/big.mlx" "${extra[@]}" >/dev/null
  read -r secs kb < "$work/t"
  awk -v c="$cmd" -v s="$secs" -v k="$kb" -v z="$size" \
    'BEGIN { printf "%-6s %8.2f s  peak RSS %8.1f MB  (%.1f x the file)\n", c, s, k / 1000, k * 1024 / z }'
done
