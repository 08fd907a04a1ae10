#!/usr/bin/env python3
"""mlx's tree ensembles against LightGBM, XGBoost and scikit-learn on the same splits.

For each dataset (penguins, breast cancer, wine, Titanic: classification; diabetes:
regression) the rows are split 70/15/15 with each of five seeds (the test parts hold 27-197
rows, where one row is up to 0.04 of accuracy, so a single split decides little), preprocessed once here (numbers:
the training median for missing values; categories: one-hot over the training levels), and
written as train/val/test CSV files. mlx reads those files as named sources, so every library
sees the same matrix; each trains with matching hyperparameters, and the mean test accuracy
(R² for diabetes) over the five splits is reported side by side.

    python3 bench/trees_accuracy.py [--mlx target/release/mlx] [--out bench/results]
    python3 bench/trees_accuracy.py --fixture tests/data/trees

`--fixture DIR` writes the first split of penguins, Titanic and diabetes as CSV files and the
peers' figures on them (`reference.json`), which `tests/it/trees.rs` holds mlx to.

Needs numpy, pandas, scikit-learn, lightgbm, xgboost (pip).
"""

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLITS = [0, 1, 2, 3, 4]
TREES, DEPTH, LR, BINS = 100, 6, 0.1, 255
FOREST_TREES, FOREST_DEPTH = 100, 10


def penguins():
    df = pd.read_csv(os.path.join(ROOT, "examples/data/penguins.csv"), na_values=["NA"])
    df = df.drop(columns=["year"], errors="ignore")
    return df, "species", ["island", "sex"]


def diabetes():
    df = pd.read_csv(os.path.join(ROOT, "examples/data/diabetes.csv"))
    return df, "progression", []


def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    df = d.frame.rename(columns=lambda c: c.replace(" ", "_"))
    return df, "target", []


def wine():
    from sklearn.datasets import load_wine

    d = load_wine(as_frame=True)
    df = d.frame.rename(columns=lambda c: c.replace("/", "_"))
    return df, "target", []


def titanic():
    import sklearn

    path = os.path.join(
        os.path.dirname(sklearn.__file__),
        "datasets/tests/data/openml/id_40945/data-v1-dl-16826755.arff.gz",
    )
    import csv

    text = gzip.open(path, "rt").read()
    data = text[text.lower().index("@data") + 5 :]
    header = [
        line.split()[1].strip("'\"")
        for line in text.splitlines()
        if line.lower().startswith("@attribute")
    ]
    rows = [
        r
        for r in csv.reader(io.StringIO(data.strip()), quotechar='"', escapechar="\\")
        if len(r) == len(header)
    ]
    df = pd.DataFrame(rows, columns=header).replace("?", np.nan)
    for c in ["pclass", "age", "sibsp", "parch", "fare"]:
        df[c] = pd.to_numeric(df[c])
    df = df[["pclass", "sex", "age", "sibsp", "parch", "fare", "embarked", "survived"]]
    df["survived"] = df["survived"].astype(int)
    return df, "survived", ["sex", "embarked"]


DATASETS = {
    "penguins": penguins,
    "breast_cancer": breast_cancer,
    "wine": wine,
    "titanic": titanic,
    "diabetes": diabetes,
}


def prepare(df, target, cats, seed):
    """Split 70/15/15 and preprocess with training statistics only."""
    df = df.dropna(subset=[target]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    a, b = int(0.7 * len(df)), int(0.85 * len(df))
    parts = [df.iloc[order[:a]], df.iloc[order[a:b]], df.iloc[order[b:]]]
    train = parts[0]
    out = []
    nums = [c for c in df.columns if c not in cats and c != target]
    med = train[nums].median()
    levels = {c: sorted(train[c].dropna().astype(str).unique()) for c in cats}
    for p in parts:
        x = p[nums].fillna(med).astype(float)
        for c in cats:
            v = p[c].astype(str)
            for level in levels[c]:
                x[f"{c}_{level}".replace(" ", "_")] = (v == level).astype(float)
        x[target] = p[target].values
        out.append(x.reset_index(drop=True))
    return out


def mlx_spec(name, target, classes, model):
    kind = f"Class[{classes}]" if classes else "Float"
    metrics = "[accuracy]" if classes else "[r2]"
    return f"""dataset {name} {{
  source train = csv("train.csv")
  source val   = csv("val.csv")
  source test  = csv("test.csv")
  features {{
    *: Float = impute(median)
  }}
  target {target}: {kind}
}}

train run {{
  model   = {model}
  data    = {name}
  seed    = 1
  batch   = 256
  metrics = {metrics}
}}
"""


def run_mlx(mlx, work, name, target, classes, model):
    with open(os.path.join(work, "spec.mlx"), "w") as f:
        f.write(mlx_spec(name, target, classes, model))
    runs = os.path.join(work, "runs")
    t0 = time.time()
    r = subprocess.run(
        [mlx, "run", "spec.mlx", "--out", runs],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "MLX_THREADS": "2"},
    )
    secs = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"mlx failed on {name}:\n{r.stderr}")
    newest = r.stdout.strip().splitlines()[-1]
    summary = json.load(open(os.path.join(work, newest, "summary.json")))
    test = summary["test"]
    return (test["accuracy"] if classes else test["r2"]), secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlx", default=os.path.join(ROOT, "target/release/mlx"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--fixture")
    args = ap.parse_args()
    import lightgbm as lgb
    import xgboost as xgb

    rows = []
    for name, load in DATASETS.items():
        df, target, cats = load()
        if args.fixture:
            if name in ("penguins", "titanic", "diabetes"):
                res = one(args, lgb, xgb, name, df, target, cats, SPLITS[0], args.fixture)
                rows.append({"dataset": name, **res})
            continue
        runs = [one(args, lgb, xgb, name, df, target, cats, seed) for seed in SPLITS]
        res = {"dataset": name, "rows": len(df), "features": runs[0]["features"]}
        for key in runs[0]:
            if key != "features":
                res[key] = float(np.mean([r[key] for r in runs]))
        res["splits"] = runs
        rows.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "splits"}), flush=True)
    if args.fixture:
        with open(os.path.join(args.fixture, "reference.json"), "w") as f:
            json.dump(rows, f, indent=1)
        return
    write(args, rows)


def one(args, lgb, xgb, name, df, target, cats, seed, fixture=None):
    """One split: mlx, LightGBM, XGBoost and scikit-learn on the same files."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.metrics import accuracy_score, r2_score

    if True:
        train, val, test = prepare(df, target, cats, seed)
        classes = None
        if name != "diabetes":
            codes = {v: i for i, v in enumerate(sorted(train[target].astype(str).unique()))}
            for p in (train, val, test):
                p[target] = p[target].astype(str).map(codes)
            classes = len(codes)
        work = tempfile.mkdtemp(prefix=f"mlx-trees-{name}-")
        if fixture:
            work = os.path.join(fixture, name)
            os.makedirs(work, exist_ok=True)
        for p, f in ((train, "train.csv"), (val, "val.csv"), (test, "test.csv")):
            out = p.copy()
            if classes:
                out[target] = out[target].map(lambda i: f"c{i}")
            out.to_csv(os.path.join(work, f), index=False)
        xs = [p.drop(columns=[target]).values.astype(np.float32) for p in (train, val, test)]
        ys = [p[target].values for p in (train, val, test)]
        score = (lambda y, p: accuracy_score(y, p)) if classes else r2_score
        res = {"features": xs[0].shape[1]}
        gb = f"gradient_boosting(trees: {TREES}, depth: {DEPTH}, lr: {LR}, bins: {BINS})"
        res["mlx_gbt"], res["mlx_gbt_s"] = run_mlx(args.mlx, work, name, target, classes, gb)
        rf = f"random_forest(trees: {FOREST_TREES}, depth: {FOREST_DEPTH})"
        res["mlx_rf"], res["mlx_rf_s"] = run_mlx(args.mlx, work, name, target, classes, rf)
        common = dict(n_estimators=TREES, max_depth=DEPTH, learning_rate=LR, n_jobs=2)
        kinds = (
            (lgb.LGBMClassifier, xgb.XGBClassifier, RandomForestClassifier, "sqrt")
            if classes
            else (lgb.LGBMRegressor, xgb.XGBRegressor, RandomForestRegressor, 1.0)
        )
        gbm, xgbm, forest, max_features = kinds
        peers = {
            "lightgbm": gbm(num_leaves=2**DEPTH, min_child_weight=1.0, min_child_samples=1,
                            reg_lambda=1.0, max_bin=BINS, verbose=-1, **common),
            # LightGBM with mlx's (and XGBoost's) binning: its default gives a bin at least 3
            # rows (`min_data_in_bin`), coarser bins on small tables.
            "lightgbm_bin1": gbm(num_leaves=2**DEPTH, min_child_weight=1.0, min_child_samples=1,
                                 reg_lambda=1.0, max_bin=BINS, min_data_in_bin=1, verbose=-1,
                                 **common),
            "xgboost": xgbm(tree_method="hist", max_bin=BINS + 1, min_child_weight=1.0,
                            reg_lambda=1.0, **common),
            "sklearn_rf": forest(n_estimators=FOREST_TREES, max_depth=FOREST_DEPTH,
                                 max_features=max_features, random_state=seed, n_jobs=2),
        }
        for key, m in peers.items():
            res[key] = score(ys[2], m.fit(xs[0], ys[0]).predict(xs[2]))
        return res


def write(args, rows):
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "trees_accuracy.json"), "w") as f:
        json.dump(rows, f, indent=1)
    lines = [
        f"Mean over {len(SPLITS)} splits (70/15/15, seeds {SPLITS}); boosting: {TREES} rounds, "
        f"depth {DEPTH}, lr {LR}, {BINS} bins; forests: {FOREST_TREES} trees, depth {FOREST_DEPTH}.",
        "",
        "| dataset | metric | mlx boosted | LightGBM | LightGBM, min_data_in_bin=1 | XGBoost "
        "| mlx forest | scikit-learn forest |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        metric = "R²" if r["dataset"] == "diabetes" else "accuracy"
        lines.append(
            f"| {r['dataset']} | {metric} | {r['mlx_gbt']:.4f} | {r['lightgbm']:.4f} | "
            f"{r['lightgbm_bin1']:.4f} | {r['xgboost']:.4f} | {r['mlx_rf']:.4f} | {r['sklearn_rf']:.4f} |"
        )
    print("\n".join(lines))
    with open(os.path.join(args.out, "trees_accuracy.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
