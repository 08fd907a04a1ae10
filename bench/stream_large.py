#!/usr/bin/env python3
"""Benchmark: training on a CSV file larger than memory should be, with bounded memory.

Generates a CSV of at least GB gigabytes (default 5): 16 number columns (1% missing), two
category columns (6 and 12 levels) and a 4-class target that depends on them, written by
pyarrow in 1M-row blocks. Then, in one run on one machine:

- `mlx check` of a streamed spec (the schema pass: every value read, levels and class counts),
  whole-process wall time and peak RSS;
- `mlx run` of a linear model and of an MLP (64 hidden) for one epoch on the streamed dataset
  (`stream = true`, random 98/1/1 split, impute+standardize, one-hot): the fit passes' rate,
  the training rate (rows/s of the epoch, reading and parsing included), whole-process wall
  time and peak RSS;
- the peers reading the same file: pandas.read_csv in 1M-row chunks and pyarrow's streaming
  CSV reader (bounded memory, like mlx), and pyarrow.csv.read_csv of the whole file (the
  fastest, holding it all), each in its own process with its peak RSS.

Usage: python3 bench/stream_large.py [GB] [DIR]   (needs numpy, pandas, pyarrow; DIR holds the
generated file, default $TMPDIR; MLX_BIN=path, else target/release/mlx from
`cargo build --release`). Results: bench/results/stream_large.md.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

GB = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
DIR = sys.argv[2] if len(sys.argv) > 2 else tempfile.gettempdir()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MLX = os.environ.get("MLX_BIN", os.path.join(ROOT, "target", "release", "mlx"))
NUM = 16

SPEC = """use std.nn
dataset big {{
  source = csv("{path}")
  stream = true
  shuffle_buffer = 65536
  split  = random(train: 0.98, val: 0.01, test: 0.01)
  features {{
    c0: Category = one_hot
    c1: Category = impute(mode) |> one_hot
    *: Float = impute(mean) |> standardize
  }}
  target y: Class[4]
}}
model linear(x: Float[B, F]) -> Float[B, C] {{
  x |> dense(C)
}}
model mlp(x: Float[B, F]) -> Float[B, C] {{
  x |> dense(64) |> relu |> dense(C)
}}
{trains}"""


TRAIN = """train {model}_model {{
  model = {model}
  data = big
  loss = cross_entropy
  optimizer = adam(lr: 0.002)
  epochs = 1
  batch = 256
  seed = 1
  metrics = [accuracy]
}}
"""
TRAINS = ["linear", "mlp"]


def generate(path, gb):
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(1)
    w = rng.normal(size=(NUM, 4))
    block = 1_000_000
    rows = 0
    schema = pa.schema(
        [(f"x{i}", pa.float32()) for i in range(NUM)]
        + [("c0", pa.string()), ("c1", pa.string()), ("y", pa.int64())])
    with pcsv.CSVWriter(path, schema) as out:
        while True:
            x = rng.normal(size=(block, NUM)).astype(np.float32) * 3 + 1
            c0 = rng.integers(0, 6, size=block)
            c1 = rng.integers(0, 12, size=block)
            logits = x @ w + np.eye(4)[c0 % 4] * 2 + rng.normal(size=(block, 4))
            y = logits.argmax(axis=1)
            cols = {}
            for i in range(NUM):
                mask = rng.random(block) < 0.01
                cols[f"x{i}"] = pa.array(np.round(x[:, i], 3), mask=mask)
            levels0 = np.array([f"k{i}" for i in range(6)])
            levels1 = np.array([f"group_{i}" for i in range(12)])
            cols["c0"] = pa.array(levels0[c0])
            cols["c1"] = pa.array(levels1[c1], mask=rng.random(block) < 0.01)
            cols["y"] = pa.array(y)
            out.write_table(pa.table(cols))
            rows += block
            out_size = os.path.getsize(path)
            print(f"  generated {rows:,} rows, {out_size / 1e9:.2f} GB", file=sys.stderr)
            if out_size >= gb * 1e9:
                break
    return rows


def timed(cmd):
    t = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
    last = t.stderr.strip().splitlines()[-1].split()
    return float(last[0]), int(last[1]) / 1024, t.stdout, t.stderr, t.returncode


PEER = {
    "pandas.read_csv (chunks of 1M rows)": """
import pandas as pd, sys
n = 0
for c in pd.read_csv(sys.argv[1], chunksize=1_000_000):
    n += len(c)
print(n)
""",
    "pyarrow.csv.open_csv (streaming)": """
import pyarrow.csv as c, sys
n = 0
r = c.open_csv(sys.argv[1], read_options=c.ReadOptions(block_size=1 << 24))
for b in r:
    n += b.num_rows
print(n)
""",
    "pyarrow.csv.read_csv (whole file)": """
import pyarrow.csv as c, sys
print(c.read_csv(sys.argv[1]).num_rows)
""",
}


def main():
    path = os.path.join(DIR, f"mlx-stream-{GB:g}gb.csv")
    if not os.path.exists(path) or os.path.getsize(path) < GB * 1e9:
        print(f"generating {path} ({GB:g} GB)", file=sys.stderr)
        generate(path, GB)
    size = os.path.getsize(path)
    spec = os.path.join(DIR, "mlx-stream.mlx")
    with open(spec, "w") as f:
        trains = "".join(TRAIN.format(model=m) for m in TRAINS)
        f.write(SPEC.format(path=path, trains=trains))
    lines = [f"# Training on a {size / 1e9:.2f} GB CSV file with bounded memory\n"]
    lines.append(f"mlx: `{MLX}`; {os.cpu_count()} CPUs; whole-process wall time and peak RSS per command.\n")
    lines.append("| what | rows | wall s | rows/s | peak RSS MiB |")
    lines.append("|---|---|---|---|---|")

    secs, rss, out, err, rc = timed([MLX, "check", spec])
    assert rc == 0, err
    rows = None
    for train in [f"{m}_model" for m in TRAINS]:
        out_dir = os.path.join(DIR, "mlx-stream-runs")
        s, r, out, err, rc = timed([MLX, "run", spec, "--train", train, "--out", out_dir, "--no-plot"])
        assert rc == 0, err
        m = re.search(r"streamed `big`: (\d+) rows, fitted in (\d+) pass(?:es)? over the sources in ([\d.]+) s", err)
        rows, passes, fit_s = int(m.group(1)), int(m.group(2)), float(m.group(3))
        run_dir = out.strip().splitlines()[-1]
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
        if train == "linear_model":
            lines.append(
                f"| `mlx check` (schema pass) | {rows:,} | {secs:.1f} | {rows / secs:,.0f} | {rss:.0f} |")
        lines.append(f"| `mlx run` {train}: fit, {passes} passes | {rows * passes:,} | {fit_s:.1f} | {rows * passes / fit_s:,.0f} | |")
        lines.append(
            f"| `mlx run` {train}: one epoch of training (reading included) | ~{int(rows * 0.98):,} | "
            f"| {summary['samples_per_second']:,.0f} | |")
        lines.append(
            f"| `mlx run` {train}: whole run (fit, epoch, val, test, drift sample), test accuracy {summary['test']['accuracy']:.4f} | {rows:,} | {s:.1f} | | **{r:.0f}** |")
    for name, code in PEER.items():
        s, r, out, err, rc = timed([sys.executable, "-c", code, path])
        assert rc == 0, err
        n = int(out.strip())
        lines.append(f"| {name} | {n:,} | {s:.1f} | {n / s:,.0f} | {r:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "stream_large.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
