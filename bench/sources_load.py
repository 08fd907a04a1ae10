#!/usr/bin/env python3
"""Benchmark: reading a large table as CSV, Parquet and SQLite, mlx beside pandas/pyarrow.

Generates ROWS penguins-like rows (4 numbers, 3 categories, a class target, 2% missing values)
as a CSV file, a Parquet file (pyarrow defaults: snappy, dictionary) and a SQLite table, then
reports, in one run on one machine:

- `mlx check` on each source: the schema pass (every value read, per-column statistics and
  levels kept), whole-process wall time, peak RSS and rows/s;
- `mlx run --set epochs=1` of a small MLP on each: load, split, fit, one epoch, evaluation;
- pandas.read_csv, pyarrow.csv.read_csv, pyarrow.parquet.read_table and pandas.read_sql on the
  same files (in-process time to a DataFrame/Table), as the peers' load rates.

Usage: python3 bench/sources_load.py [ROWS]   (default 2,000,000; needs pandas and pyarrow;
MLX_BIN=path, else target/release/mlx built with `cargo build --release`)
"""

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MLX = os.environ.get("MLX_BIN", os.path.join(ROOT, "target", "release", "mlx"))

SPEC = """use std.nn
dataset big {{
  source = {source}
  split  = random(train: 0.8, val: 0.1, test: 0.1)
  features {{
    bill_length_mm: Float = impute(median) |> standardize
    bill_depth_mm: Float = impute(median) |> standardize
    flipper_length_mm: Float = impute(median) |> standardize
    body_mass_g: Float = impute(mean) |> standardize
    island: Category = one_hot
    sex: Category = impute(mode) |> one_hot
  }}
  target species: Class[3]
}}
model m(x: Float[B, F]) -> Float[B, C] {{ x |> dense(16) |> relu |> dense(C) }}
train big_mlp {{ model = m  data = big  loss = cross_entropy  optimizer = adam(lr: 0.01)  epochs = 1  batch = 512 }}
"""


def generate(work):
    r = random.Random(7)
    islands = ["Biscoe", "Dream", "Torgersen"]
    csv_path = os.path.join(work, "big.csv")
    rows = []
    with open(csv_path, "w") as f:
        f.write("species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n")
        for _ in range(ROWS):
            s = r.randrange(3)
            na = lambda v: "" if r.random() < 0.02 else v  # noqa: E731
            row = ["ABC"[s], islands[r.randrange(3)], na(f"{35 + 5 * s + r.random() * 5:.1f}"),
                   na(f"{14 + r.random() * 6:.1f}"), na(str(180 + 10 * s + r.randrange(20))),
                   na(str(3000 + 700 * s + r.randrange(1000))), na("male" if r.random() < .5 else "female")]
            f.write(",".join(row) + "\n")
    import pandas as pd
    df = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    pq_path = os.path.join(work, "big.parquet")
    df.to_parquet(pq_path, index=False)
    db_path = os.path.join(work, "big.db")
    with sqlite3.connect(db_path) as c:
        df.to_sql("big", c, index=False)
    return csv_path, pq_path, db_path


def mlx(args, cwd):
    """Whole-process wall time and peak RSS (MB) of one mlx command (GNU time)."""
    out = os.path.join(cwd, "time.txt")
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out, MLX] + args, cwd=cwd,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"mlx {' '.join(args)} failed:\n{p.stderr}")
    with open(out) as f:
        peak_kb = int(f.read().split()[-1])
    return wall, peak_kb / 1000


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    work = tempfile.mkdtemp(prefix="mlx-sources-")
    csv_path, pq_path, db_path = generate(work)
    size = {k: os.path.getsize(p) / 1e6 for k, p in
            [("csv", csv_path), ("parquet", pq_path), ("sqlite", db_path)]}
    print(f"rows: {ROWS:,}; files: CSV {size['csv']:.0f} MB, Parquet {size['parquet']:.0f} MB, "
          f"SQLite {size['sqlite']:.0f} MB")
    sources = {
        "csv": f'csv("{csv_path}")',
        "parquet": f'parquet("{pq_path}")',
        "sqlite": f'sql("sqlite:{db_path}", query: "SELECT * FROM big")',
    }
    print(f"{'source':8} {'mlx check':>11} {'rows/s':>12} {'peak MB':>8} {'mlx run (1 epoch)':>18} {'peak MB':>8}")
    for name, src in sources.items():
        spec = os.path.join(work, f"{name}.mlx")
        with open(spec, "w") as f:
            f.write(SPEC.format(source=src))
        cw, cm = mlx(["check", spec], work)
        rw, rm = mlx(["run", spec, "--no-plot", "-q", "--out", os.path.join(work, "runs")], work)
        print(f"{name:8} {cw:10.2f}s {ROWS / cw:12,.0f} {cm:8.0f} {rw:17.2f}s {rm:8.0f}")
    import pandas as pd
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    peers = [
        ("pandas.read_csv", lambda: pd.read_csv(csv_path)),
        ("pyarrow.csv.read_csv", lambda: pacsv.read_csv(csv_path)),
        ("pyarrow.parquet.read_table", lambda: pq.read_table(pq_path)),
        ("pandas.read_sql (sqlite3)", lambda: pd.read_sql("SELECT * FROM big", sqlite3.connect(db_path))),
    ]
    print(f"{'peer':28} {'time':>8} {'rows/s':>12}")
    for name, f in peers:
        t = timed(f)
        print(f"{name:28} {t:7.2f}s {ROWS / t:12,.0f}")


if __name__ == "__main__":
    main()
