#!/usr/bin/env python3
"""Autoencoder reconstruction error: mlx's examples/fashion_autoencoder.mlx against the same
autoencoder in PyTorch.

What is measured
  The mean squared reconstruction error, over every pixel of the 10,000 Fashion-MNIST test
  images (pixels scaled to [0, 1]), of each side's trained autoencoder; the ratio mlx/PyTorch;
  and each side's wall time.

How
  PyTorch (this process, --threads threads): exactly the model, data and optimizer of
  fashion_autoencoder.mlx. Pixels * (1 / 255). Encoder Flatten-Linear(784,256)-ReLU-
  Linear(256,32), decoder Linear(32,256)-ReLU-Linear(256,784)-Sigmoid reshaped to
  [B,1,28,28]; weights glorot (xavier) uniform, biases zero, as mlx's `dense`. Loss: MSE, the
  mean over all elements. Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-8). Batch 128, the last
  partial batch kept; 5 epochs (--epochs); early stopping on the validation MSE with patience
  2, keeping the best epoch's weights, as `early_stopping(monitor: val.reconstruct,
  patience: 2)` does.
  The rows are mlx's own: `holdout(val: 0.1)` on the 60,000 training images (a dataset
  without labels, so nothing is stratified) shuffles rows 0..59999 with the stream `split`
  under the seed and gives the first 54,000 to training and the other 6,000 to validation;
  each epoch's batches are the training rows shuffled with `shuffle/epoch-N`. benchlib.py
  re-implements those streams bit for bit (checked against src/rng.rs and
  src/data/split.rs), so both sides see the same rows in the same order. Only the initial
  weights differ (PyTorch's generator, seed --seed).
  The test figure is the MSE over all 10,000 x 784 test pixels; mlx's is the row-weighted
  mean of its batch losses (src/train/run.rs), the same number up to float rounding.
  mlx: `mlx run examples/fashion_autoencoder.mlx --out TMP -q` (plus `--set epochs=N` when
  --epochs is not 5), then `test.reconstruct` of the run directory's summary.json (the
  objective's test figure). If that key is missing, the reader prints what summary.json holds
  and takes `test.loss` when there is one.

Usage
  VENV/bin/python bench/autoencoder_vs_pytorch.py              # both sides
  VENV/bin/python bench/autoencoder_vs_pytorch.py --only torch
  VENV/bin/python bench/autoencoder_vs_pytorch.py --mlx-summary RUN/summary.json
  options: --epochs N (5), --seed N (1), --threads N (2), --mlx PATH, --json FILE.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import ROOT  # noqa: E402

CODE = 32
BATCH = 128
EPOCHS = 5
LR = 1e-3
VAL = 0.1
PATIENCE = 2
OBJECTIVE = "reconstruct"


# --------------------------------------------------------------------------- PyTorch


def build_autoencoder():
    import torch.nn as nn

    encoder = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, CODE),
    )
    decoder = nn.Sequential(
        nn.Linear(CODE, 256), nn.ReLU(),
        nn.Linear(256, 784), nn.Sigmoid(),
        nn.Unflatten(1, (1, 28, 28)),
    )
    for m in [*encoder, *decoder]:
        if isinstance(m, nn.Linear):  # mlx's `dense`: glorot_uniform weights, zero biases
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return encoder, decoder


def mse_over(encoder, decoder, x, rows=None):
    """The mean squared error over every element of x[rows] (all rows when None)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        n = len(x) if rows is None else len(rows)
        for at in range(0, n, 1000):
            if rows is None:
                batch = x[at : at + 1000]
            else:
                batch = x[torch.tensor(rows[at : at + 1000])]
            total += float(((decoder(encoder(batch)) - batch) ** 2).double().sum())
            count += batch.numel()
    return total / count


def train_torch(epochs, seed, threads):
    import numpy as np
    import torch
    import torch.nn.functional as F

    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    scale = np.float32(1.0 / 255.0)
    train_x = torch.from_numpy(
        benchlib.read_idx(benchlib.TRAIN_IMAGES, 0x803).astype(np.float32) * scale).unsqueeze(1)
    test_x = torch.from_numpy(
        benchlib.read_idx(benchlib.TEST_IMAGES, 0x803).astype(np.float32) * scale).unsqueeze(1)
    train_rows, val_rows = benchlib.holdout_rows(len(train_x), VAL, seed)

    enc, dec = build_autoencoder()
    params = [*enc.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=LR, betas=(0.9, 0.999), eps=1e-8)

    t0 = time.perf_counter()
    history = []
    best = None  # (val mse, epoch, weights)
    bad_epochs = 0
    for epoch in range(epochs):
        te = time.perf_counter()
        enc.train()
        dec.train()
        loss_sum = 0.0
        for batch in benchlib.shuffled_batches(train_rows, BATCH, seed, epoch):
            x = train_x[torch.tensor(batch)]
            loss = F.mse_loss(dec(enc(x)), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(batch)
        enc.eval()
        dec.eval()
        val = mse_over(enc, dec, train_x, val_rows)
        train = loss_sum / len(train_rows)
        secs = time.perf_counter() - te
        history.append({"epoch": epoch + 1, "train": train, "val": val, "seconds": secs})
        print(f"  PyTorch epoch {epoch + 1}/{epochs}: train {train:.5f}  val {val:.5f}  "
              f"({secs:.1f} s)", file=sys.stderr, flush=True)
        if best is None or val < best[0]:
            best = (val, epoch + 1, [p.detach().clone() for p in params])
            bad_epochs = 0
        else:
            bad_epochs += 1
            if bad_epochs >= PATIENCE:
                print(f"  early stop after epoch {epoch + 1}", file=sys.stderr)
                break
    train_seconds = time.perf_counter() - t0

    with torch.no_grad():
        for p, w in zip(params, best[2]):
            p.copy_(w)
    test = mse_over(enc, dec, test_x)
    return {
        "test_mse": test,
        "best_epoch": best[1],
        "best_val_mse": best[0],
        "epochs": history,
        "train_rows": len(train_rows),
        "val_rows": len(val_rows),
        "test_rows": len(test_x),
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- mlx


def read_mlx_summary(path):
    """The test MSE in an mlx summary.json: test.reconstruct, else (with a note) test.loss."""
    summary = json.loads(Path(path).read_text())
    test = summary.get("test") or {}
    value, key = test.get(OBJECTIVE), f"test.{OBJECTIVE}"
    if not isinstance(value, (int, float)):
        print(f"note: {path} has no number at test.{OBJECTIVE}; it holds "
              f"{json.dumps({k: summary.get(k) for k in ('status', 'test', 'val', 'error')})}",
              file=sys.stderr)
        value, key = test.get("loss"), "test.loss"
        if not isinstance(value, (int, float)):
            raise SystemExit(f"{path}: no test figure to compare (no test.{OBJECTIVE} "
                             "nor test.loss)")
        print(f"note: using {key} = {value}", file=sys.stderr)
    return {
        "test_mse": float(value),
        "key": key,
        "status": summary.get("status"),
        "best_epoch": summary.get("best_epoch"),
        "epochs_run": summary.get("epochs_run"),
        "val": summary.get("val"),
        "run_wall_seconds": summary.get("wall_seconds"),
    }


def read_mlx_history(rundir):
    """Each epoch's figures from metrics.jsonl, best effort."""
    try:
        lines = (Path(rundir) / "metrics.jsonl").read_text().strip().splitlines()
        return [json.loads(x) for x in lines]
    except (OSError, ValueError):
        return None


def run_mlx_autoencoder(mlx, program, epochs, threads, workdir):
    out = Path(workdir) / "ae-runs"
    args = ["run", program, "--out", out, "-q"]
    if epochs != EPOCHS:
        args += ["--set", f"epochs={epochs}"]
    _, wall, rundir = benchlib.run_mlx(mlx, args, threads, out)
    path = rundir / "summary.json" if rundir else None
    if path is None or not path.is_file():
        raise SystemExit(f"mlx ran {program} but its run directory {rundir} has no "
                         "summary.json")
    res = read_mlx_summary(path)
    res.update(process_seconds=wall, history=read_mlx_history(rundir))
    return res


# --------------------------------------------------------------------------- main


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(
        description="Compare the test reconstruction MSE of mlx's fashion_autoencoder with "
                    "the same autoencoder trained by PyTorch on the same rows.")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help="epochs, both sides (5)")
    ap.add_argument("--seed", type=int, default=1,
                    help="the split, batch-order and PyTorch seed (1, as the program)")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for PyTorch and MLX_THREADS (2)")
    ap.add_argument("--mlx", default=None,
                    help=f"mlx binary (default: {benchlib.default_mlx()})")
    ap.add_argument("--mlx-program", default=str(ROOT / "examples" / "fashion_autoencoder.mlx"),
                    help="the mlx autoencoder program (examples/fashion_autoencoder.mlx)")
    ap.add_argument("--mlx-summary", metavar="FILE",
                    help="read mlx's figure from this summary.json instead of running mlx")
    ap.add_argument("--only", choices=["mlx", "torch"], help="one side only")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))

    # mlx runs from the repository root: paths given relative to here are made absolute.
    mlx = Path(args.mlx).absolute() if args.mlx else benchlib.default_mlx()
    args.mlx_program = str(Path(args.mlx_program).absolute())
    run_mlx_side = args.only != "torch"
    if run_mlx_side and not args.mlx_summary and not benchlib.usable_binary(mlx):
        if args.only == "mlx" or args.mlx:
            raise SystemExit(f"no mlx binary at {mlx}: build it, pass --mlx PATH, or read a "
                             "run's figure with --mlx-summary")
        print(f"note: no mlx binary at {mlx}: the mlx side is skipped", file=sys.stderr)
        run_mlx_side = False

    torch_res = mlx_res = None
    if args.only != "mlx":
        print(f"training the PyTorch autoencoder, {args.epochs} epochs ...", file=sys.stderr,
              flush=True)
        torch_res = train_torch(args.epochs, args.seed, args.threads)
    if run_mlx_side:
        if args.mlx_summary:
            mlx_res = read_mlx_summary(args.mlx_summary)
        else:
            print(f"training the mlx autoencoder ({args.mlx_program}) ...", file=sys.stderr,
                  flush=True)
            work = tempfile.mkdtemp(prefix="mlx-ae-bench-")
            try:
                mlx_res = run_mlx_autoencoder(mlx, args.mlx_program, args.epochs,
                                              args.threads, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    print(f"test reconstruction MSE (10,000 t10k images, pixels in [0, 1]), {args.epochs} "
          f"epochs, seed {args.seed}, {args.threads} threads")
    if torch_res:
        print(f"  PyTorch {torch_res['torch_version']}: {torch_res['test_mse']:.6f}  "
              f"(best epoch {torch_res['best_epoch']}, val {torch_res['best_val_mse']:.6f}; "
              f"training {torch_res['train_seconds']:.1f} s, with data loading and test "
              f"{torch_res['total_seconds']:.1f} s)")
    if mlx_res:
        print(f"  mlx ({mlx_res['key']}): {mlx_res['test_mse']:.6f}  "
              f"(best epoch {fmt(mlx_res.get('best_epoch'), 'd')}; `mlx run` process "
              f"{fmt(mlx_res.get('process_seconds'), '.1f')} s, run wall "
              f"{fmt(mlx_res.get('run_wall_seconds'), '.1f')} s)")
    ratio = None
    if torch_res and mlx_res and torch_res["test_mse"]:
        ratio = mlx_res["test_mse"] / torch_res["test_mse"]
        print(f"  ratio mlx / PyTorch: {ratio:.3f}")

    if args.json:
        doc = {
            "benchmark": "autoencoder_vs_pytorch",
            "epochs": args.epochs,
            "seed": args.seed,
            "threads": args.threads,
            "torch": torch_res,
            "mlx": mlx_res,
            "mse_ratio_mlx_over_torch": ratio,
            "mlx_binary": str(mlx) if run_mlx_side and not args.mlx_summary else None,
            "python": platform.python_version(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
