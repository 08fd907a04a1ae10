#!/usr/bin/env python3
"""Training speed of mlx's boosted trees beside LightGBM and XGBoost (`hist`), in one run.

Two tables, the same trees for every library (100 rounds, depth 6 — LightGBM: 64 leaves and
max_depth 6 —, learning rate 0.1, 255 bins, λ = 1, min_child_weight 1, 2 threads):

- Fashion-MNIST as a table: 60,000 rows × 784 pixel columns, 10 classes (1,000 trees),
  tested on the 10,000 test images;
- a generated table of 1,000,000 rows × 50 columns, two classes (a noisy nonlinear rule),
  tested on 100,000 more rows.

mlx's training time is the sum of its rounds' `seconds` in `metrics.jsonl` (the first round's
includes fitting the bins): what `fit` times for the peers. Reading the CSV is not counted for
anyone. Accuracy is each library's on the test rows.

    python3 bench/trees_speed.py [--mlx target/release/mlx] [--out bench/results] [--only fashion|wide]

Needs numpy, lightgbm, xgboost (pip) and Fashion-MNIST in /usr/share/datasets/fashion-mnist.
"""

import argparse
import gzip
import json
import os
import platform
import struct
import subprocess
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"
ROUNDS, DEPTH, LR, BINS, THREADS = 100, 6, 0.1, 255, 2


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    _, _, rank = struct.unpack(">HBB", data[:4])
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    return np.frombuffer(data[4 + 4 * rank :], dtype=np.uint8).reshape(dims)


def fashion():
    x = idx(f"{FASHION}/train-images-idx3-ubyte.gz").reshape(60000, -1)
    y = idx(f"{FASHION}/train-labels-idx1-ubyte.gz")
    xt = idx(f"{FASHION}/t10k-images-idx3-ubyte.gz").reshape(10000, -1)
    yt = idx(f"{FASHION}/t10k-labels-idx1-ubyte.gz")
    return x.astype(np.float32), y.astype(int), xt.astype(np.float32), yt.astype(int), 10


def wide():
    rng = np.random.default_rng(0)
    n, nt, f = 1_000_000, 100_000, 50
    x = rng.normal(size=(n + nt, f)).astype(np.float32)
    z = x[:, 0] * x[:, 1] + np.sin(2 * x[:, 2]) + 0.5 * x[:, 3] ** 2 - x[:, 4] + 0.3 * x[:, 5:15].sum(1)
    y = (z + rng.normal(scale=1.0, size=n + nt) > 0.5).astype(int)
    return x[:n], y[:n], x[n:], y[n:], 2


def write_csv(path, x, y):
    cols = [f"f{i}" for i in range(x.shape[1])]
    with open(path, "w") as f:
        f.write(",".join(cols + ["label"]) + "\n")
        fmt = ",".join(["%.7g"] * x.shape[1]) + ",c%d"
        for start in range(0, len(x), 20000):
            block = np.column_stack([x[start : start + 20000], y[start : start + 20000]])
            np.savetxt(f, block, fmt=fmt)


def run_mlx(mlx, work, classes):
    spec = f"""dataset table {{
  source train = csv("train.csv")
  source test  = csv("test.csv")
  features {{
    *: Float
  }}
  target label: Class[{classes}]
}}

train boosted {{
  model   = gradient_boosting(trees: {ROUNDS}, depth: {DEPTH}, lr: {LR}, bins: {BINS})
  data    = table
  seed    = 1
  batch   = 512
  metrics = [accuracy]
}}
"""
    with open(os.path.join(work, "spec.mlx"), "w") as f:
        f.write(spec)
    t0 = time.time()
    r = subprocess.run(
        [mlx, "run", "spec.mlx", "--out", "runs", "-q", "--no-plot"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "MLX_THREADS": str(THREADS)},
    )
    whole = time.time() - t0
    if r.returncode != 0:
        raise SystemExit(f"mlx failed:\n{r.stderr}")
    run = os.path.join(work, r.stdout.strip().splitlines()[-1])
    lines = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    train_s = sum(line.get("seconds") or 0 for line in lines)
    acc = json.load(open(os.path.join(run, "summary.json")))["test"]["accuracy"]
    return train_s, acc, whole


def peers(x, y, xt, yt, classes):
    import lightgbm as lgb
    import xgboost as xgb

    out = {}
    m = lgb.LGBMClassifier(
        n_estimators=ROUNDS, max_depth=DEPTH, num_leaves=2**DEPTH, learning_rate=LR,
        max_bin=BINS, min_child_weight=1.0, reg_lambda=1.0, n_jobs=THREADS, verbose=-1,
    )
    t0 = time.time()
    m.fit(x, y)
    out["lightgbm_s"] = time.time() - t0
    out["lightgbm_acc"] = float((m.predict(xt) == yt).mean())
    m = xgb.XGBClassifier(
        tree_method="hist", n_estimators=ROUNDS, max_depth=DEPTH, learning_rate=LR,
        max_bin=BINS + 1, min_child_weight=1.0, reg_lambda=1.0, n_jobs=THREADS,
    )
    t0 = time.time()
    m.fit(x, y)
    out["xgboost_s"] = time.time() - t0
    out["xgboost_acc"] = float((m.predict(xt) == yt).mean())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlx", default=os.path.join(ROOT, "target/release/mlx"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--only", choices=["fashion", "wide"])
    args = ap.parse_args()
    results = []
    for name, load in (("fashion", fashion), ("wide", wide)):
        if args.only and args.only != name:
            continue
        x, y, xt, yt, classes = load()
        work = tempfile.mkdtemp(prefix=f"mlx-trees-speed-{name}-")
        write_csv(os.path.join(work, "train.csv"), x, y)
        write_csv(os.path.join(work, "test.csv"), xt, yt)
        res = {"table": name, "rows": len(x), "columns": x.shape[1], "classes": classes}
        res["mlx_s"], res["mlx_acc"], res["mlx_whole_s"] = run_mlx(args.mlx, work, classes)
        res.update(peers(x, y, xt, yt, classes))
        res["mlx_vs_faster"] = min(res["lightgbm_s"], res["xgboost_s"]) / res["mlx_s"]
        print(json.dumps(res), flush=True)
        results.append(res)
    os.makedirs(args.out, exist_ok=True)
    doc = {
        "machine": platform.processor() or platform.machine(),
        "threads": THREADS,
        "rounds": ROUNDS,
        "depth": DEPTH,
        "results": results,
    }
    with open(os.path.join(args.out, "trees_speed.json"), "w") as f:
        json.dump(doc, f, indent=1)
    for r in results:
        print(
            f"{r['table']}: mlx {r['mlx_s']:.1f} s (acc {r['mlx_acc']:.4f}), "
            f"LightGBM {r['lightgbm_s']:.1f} s ({r['lightgbm_acc']:.4f}), "
            f"XGBoost {r['xgboost_s']:.1f} s ({r['xgboost_acc']:.4f}); "
            f"mlx is {r['mlx_vs_faster']:.2f}x the faster peer"
        )


if __name__ == "__main__":
    main()
