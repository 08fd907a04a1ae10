"""Reference figures for src/trees/tests_data.rs: LightGBM, XGBoost and scikit-learn on the same
data, split and hyperparameters as the Rust tests.

Run from the repository root: python bench/trees_reference.py
(needs numpy, pandas, lightgbm, xgboost, scikit-learn).
The split: data row i (0-based, header excluded) is a test row when i % 5 == 4.
"""

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor


def split(n):
    test = np.arange(n) % 5 == 4
    return ~test, test


def r2(y, p):
    return 1.0 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2)


def penguins():
    df = pd.read_csv("examples/data/penguins.csv", na_values=["NA"])
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    x = df[cols].to_numpy(dtype=np.float32)
    names = sorted(df["species"].unique())
    y = df["species"].map({s: i for i, s in enumerate(names)}).to_numpy()
    return x, y


def diabetes():
    df = pd.read_csv("examples/data/diabetes.csv")
    x = df.iloc[:, :-1].to_numpy(dtype=np.float32)
    y = df.iloc[:, -1].to_numpy(dtype=np.float32)
    return x, y


def lgb_params(depth, lr, rounds, mcw, l2, bins):
    return dict(
        max_depth=depth, num_leaves=2**depth, learning_rate=lr, n_estimators=rounds,
        min_child_weight=mcw, min_child_samples=1, reg_lambda=l2, max_bin=bins,
        min_split_gain=0.0, subsample=1.0, colsample_bytree=1.0, verbose=-1,
        deterministic=True, num_threads=1,
    )


def xgb_params(depth, lr, rounds, mcw, l2, bins):
    return dict(
        max_depth=depth, learning_rate=lr, n_estimators=rounds, min_child_weight=mcw,
        reg_lambda=l2, max_bin=bins, tree_method="hist", n_jobs=1,
    )


def main():
    x, y = penguins()
    tr, te = split(len(y))
    # Softmax: 50 rounds, depth 3, lr 0.1, min_child_weight 1e-3, lambda 1, 255 bins.
    p = lgb_params(3, 0.1, 50, 1e-3, 1.0, 255)
    m = lgb.LGBMClassifier(**p).fit(x[tr], y[tr])
    print("penguins softmax lightgbm acc", np.mean(m.predict(x[te]) == y[te]))
    m = xgb.XGBClassifier(**xgb_params(3, 0.1, 50, 1e-3, 1.0, 255)).fit(x[tr], y[tr])
    print("penguins softmax xgboost acc", np.mean(m.predict(x[te]) == y[te]))
    # LogLoss: Adelie (class 0) against the rest, same parameters.
    yb = (y == 0).astype(int)
    m = lgb.LGBMClassifier(**p).fit(x[tr], yb[tr])
    print("penguins adelie logloss lightgbm acc", np.mean(m.predict(x[te]) == yb[te]))
    # Forest: 100 trees, depth 6, 2 features a split, min_samples_leaf 1, bootstrap.
    accs = []
    for seed in range(5):
        m = RandomForestClassifier(
            n_estimators=100, max_depth=6, max_features=2, min_samples_leaf=1,
            bootstrap=True, random_state=seed,
        ).fit(x[tr], y[tr])
        accs.append(np.mean(m.predict(x[te]) == y[te]))
    print("penguins forest sklearn acc (5 seeds)", np.mean(accs), accs)

    x, y = diabetes()
    tr, te = split(len(y))
    # Squared: 100 rounds, depth 3, lr 0.05, min_child_weight 5, lambda 1, 255 bins.
    p = lgb_params(3, 0.05, 100, 5.0, 1.0, 255)
    m = lgb.LGBMRegressor(**p).fit(x[tr], y[tr])
    print("diabetes squared lightgbm r2", r2(y[te], m.predict(x[te])))
    m = xgb.XGBRegressor(**xgb_params(3, 0.05, 100, 5.0, 1.0, 255)).fit(x[tr], y[tr])
    print("diabetes squared xgboost r2", r2(y[te], m.predict(x[te])))
    # Huber (delta 30), same parameters.
    m = lgb.LGBMRegressor(objective="huber", alpha=30.0, **p).fit(x[tr], y[tr])
    print("diabetes huber lightgbm r2", r2(y[te], m.predict(x[te])))
    # Forest: 100 trees, depth 6, 3 features a split, min_samples_leaf 5, bootstrap.
    r2s = []
    for seed in range(5):
        m = RandomForestRegressor(
            n_estimators=100, max_depth=6, max_features=3, min_samples_leaf=5,
            bootstrap=True, random_state=seed,
        ).fit(x[tr], y[tr])
        r2s.append(r2(y[te], m.predict(x[te])))
    print("diabetes forest sklearn r2 (5 seeds)", np.mean(r2s), r2s)


if __name__ == "__main__":
    main()
