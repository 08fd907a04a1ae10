#!/usr/bin/env python3
"""Training throughput of mlx against PyTorch on the Fashion-MNIST examples, on the
CPU (default) or the GPU (`--backend cuda`).

For each model — the examples (MLP, LeNet-5, row-LSTM, row-GRU) and the benchmark's own
(bench/models/: the deeper CNN of issue 19, a VGG-style CNN with batch norm, a ResNet-style
network with skip connections, a stacked GRU, a wide MLP) — this runs, one after the
other and each in its own subprocess:

  * mlx:     `mlx run <dir>/fashion_<model>.mlx --set epochs=1 --out TMP -q`
             with MLX_THREADS=<threads>; throughput is `samples_per_second` from
             the run's summary.json (training samples / training time).
  * PyTorch: this script in a hidden `--torch-child MODEL` mode: the same model,
             data, preprocessing, batch size and optimizer, one epoch, with
             torch.set_num_threads(<threads>) and OMP_NUM_THREADS=<threads>.

With `--backend cuda`, mlx runs with `--backend cuda` (a release binary built with
`--features cuda`) and PyTorch puts the model and the training rows on the GPU
(`.cuda()`); both read the loss back every batch, as mlx does. See
bench/gpu_vs_pytorch.sh for running it on a GPU machine.

Throughput counts the training loop only (evaluation excluded). Process wall time
and peak resident memory are those of the whole child process (taken with
os.wait4), so mlx's include data loading, evaluation and writing the run
directory, and PyTorch's include `import torch` and data loading.

Usage (from anywhere; paths are resolved from this file's location):

    cargo build --release
    python3 bench/fashion_vs_pytorch.py [--models mlp,lenet,lstm] [--repeat N]
                                        [--mlx PATH] [--threads 2] [--json FILE]
                                        [--backend cpu|cuda]
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
TRAIN_IMAGES = DATA_DIR / "train-images-idx3-ubyte.gz"
TRAIN_LABELS = DATA_DIR / "train-labels-idx1-ubyte.gz"
# The canonical examples (examples/fashion_*.mlx), then models of the benchmark's own
# (bench/models/fashion_*.mlx) so that no shape family goes untuned.
MODELS = ["mlp", "lenet", "lstm", "gru", "deep", "vgg", "resnet", "stacked_gru", "wide_mlp"]

# Must match examples/fashion_*.mlx and examples/fashion_data.mlx.
MEAN, STD = 0.2860, 0.3530
TRAIN_ROWS = 54000  # mlx holds out 10% of the 60000 training rows for validation
BATCH = 128
LR = 1e-3
CLIP = {"lstm": 1.0, "gru": 1.0, "stacked_gru": 1.0}

TORCH_HINT = (
    "PyTorch is not importable by {py}.\n"
    "Install it with:  {py} -m pip install torch numpy\n"
    "(on Linux x86-64 the PyPI wheel pulls CUDA libraries, several GB; see bench/README.md)"
)


# --------------------------------------------------------------------------- PyTorch child


def read_idx(path, magic):
    import numpy as np

    with gzip.open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        raise SystemExit(f"{path}: IDX magic {got:#x}, expected {magic:#x}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def build_model(name):
    import torch.nn as nn

    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )
    if name == "lstm":

        class RowLSTM(nn.Module):
            def __init__(self, hidden=128):
                super().__init__()
                self.lstm = nn.LSTM(28, hidden, batch_first=True)
                self.out = nn.Linear(hidden, 10)

            def forward(self, x):
                seq, _ = self.lstm(x.squeeze(1))  # [B, 28 rows, 28 pixels]
                return self.out(seq[:, -1, :])

        return RowLSTM()
    if name in ("gru", "stacked_gru"):

        class RowGRU(nn.Module):
            def __init__(self, hidden=64, layers=1 if name == "gru" else 2):
                super().__init__()
                self.gru = nn.GRU(28, hidden, num_layers=layers, batch_first=True)
                self.out = nn.Linear(hidden, 10)

            def forward(self, x):
                seq, _ = self.gru(x.squeeze(1))
                return self.out(seq[:, -1, :])

        return RowGRU()
    if name == "deep":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.GELU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.GELU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.GELU(),
            nn.AvgPool2d(7), nn.Flatten(), nn.Linear(64, 10),
        )
    if name == "vgg":

        def block(cin, cout):
            return [
                nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
            ]

        return nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AvgPool2d(7), nn.Flatten(), nn.Linear(128, 10),
        )
    if name == "resnet":

        class Residual(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                    nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c),
                )

            def forward(self, x):
                return (self.body(x) + x).relu()

        return nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            Residual(32), Residual(32),
            nn.AvgPool2d(14), nn.Flatten(), nn.Linear(32, 10),
        )
    if name == "wide_mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 1024), nn.ReLU(),
            nn.Linear(1024, 1024), nn.ReLU(),
            nn.Linear(1024, 10),
        )
    raise SystemExit(f"unknown model {name!r}")


def torch_child(name, threads, limit, seed, device="cpu"):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import numpy as np
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or missing CUDA libraries of the PyPI wheel
        print(f"import failed: {e!r}", file=sys.stderr)
        print(TORCH_HINT.format(py=sys.executable), file=sys.stderr)
        sys.exit(3)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if device == "cuda" and not torch.cuda.is_available():
        print("PyTorch sees no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
        sys.exit(3)
    dev = torch.device(device)

    images = read_idx(TRAIN_IMAGES, 0x803)  # [60000, 28, 28] uint8
    labels = read_idx(TRAIN_LABELS, 0x801)  # [60000] uint8
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(labels))[: min(TRAIN_ROWS, limit or TRAIN_ROWS)]
    # Pixels stay uint8 until a batch needs them.
    x_all = torch.from_numpy(np.ascontiguousarray(images[rows])).unsqueeze(1)  # [N,1,28,28]
    y_all = torch.from_numpy(labels[rows].astype(np.int64))
    n = len(rows)
    # On the GPU the training rows live there, as mlx's batches do once uploaded.
    x_all, y_all = x_all.to(dev), y_all.to(dev)

    model = build_model(name).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    clip = CLIP.get(name)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    if device == "cuda":
        # Start timing with the device idle and its libraries loaded (cuBLAS, cuDNN).
        warm = F.cross_entropy(model(x_all[:BATCH].float()), y_all[:BATCH])
        warm.backward()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()

    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen).to(dev)
    loss_sum = 0.0
    for start in range(0, n, BATCH):
        idx = perm[start : start + BATCH]
        x = x_all[idx].float().div_(255.0).sub_(MEAN).div_(STD)
        y = y_all[idx]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        loss_sum += loss.item() * len(idx)
    if device == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t0

    print(json.dumps({
        "model": name,
        "samples_per_second": n / secs,
        "train_seconds": secs,
        "train_samples": n,
        "train_loss": loss_sum / n,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }))


# --------------------------------------------------------------------------- parent


def run_measured(cmd, env, cwd):
    """Run cmd; return (returncode, stdout, stderr, wall seconds, peak RSS in MB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            p.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            wall,
            usage.ru_maxrss / 1024.0,  # Linux reports KiB
        )


def fail(side, model, cmd, rc, stdout, stderr, reason=None):
    tail = "\n".join((stderr or stdout).strip().splitlines()[-25:])
    why = reason or f"exit {rc}"
    raise SystemExit(
        f"\n{side} run of {model} failed ({why}):\n  {' '.join(map(str, cmd))}\n{tail}"
    )


def run_mlx(mlx, model, threads, backend="cpu"):
    example = ROOT / "examples" / f"fashion_{model}.mlx"
    if not example.is_file():
        example = ROOT / "bench" / "models" / f"fashion_{model}.mlx"
    env = dict(os.environ, MLX_THREADS=str(threads))
    tmp = tempfile.mkdtemp(prefix="mlx-bench-")
    try:
        cmd = [str(mlx), "run", str(example), "--set", "epochs=1", "--out", tmp, "-q",
               "--backend", backend]
        rc, stdout, stderr, wall, peak = run_measured(cmd, env, ROOT)
        if rc != 0:
            fail("mlx", model, cmd, rc, stdout, stderr)
        lines = stdout.strip().splitlines()
        rundir = Path(lines[-1].strip()) if lines else None
        if rundir is not None and not rundir.is_absolute():
            rundir = ROOT / rundir
        summary_path = rundir / "summary.json" if rundir else None
        if summary_path is None or not summary_path.is_file():
            fail("mlx", model, cmd, rc, stdout, stderr,
                 reason=f"no summary.json in the run directory {rundir!s} (last stdout line)")
        summary = json.loads(summary_path.read_text())
        sps = summary.get("samples_per_second")
        if not isinstance(sps, (int, float)) or sps <= 0:
            fail("mlx", model, cmd, rc, stdout, stderr,
                 reason=f"{summary_path} has no positive samples_per_second")
        train_loss = None  # best effort: the last epoch line of metrics.jsonl
        try:
            last = (rundir / "metrics.jsonl").read_text().strip().splitlines()[-1]
            train_loss = json.loads(last)["train"]["loss"]
        except (OSError, IndexError, KeyError, TypeError, ValueError):
            pass
        return {
            "samples_per_second": float(sps),
            "process_seconds": wall,
            "peak_mb": peak,
            "run_wall_seconds": summary.get("wall_seconds"),
            "train_loss": train_loss,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_torch(model, threads, limit, seed, backend="cpu"):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--torch-child", model,
           "--threads", str(threads), "--seed", str(seed), "--backend", backend]
    if limit:
        cmd += ["--limit", str(limit)]
    rc, stdout, stderr, wall, peak = run_measured(cmd, env, ROOT)
    if rc != 0:
        fail("PyTorch", model, cmd, rc, stdout, stderr)
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(process_seconds=wall, peak_mb=peak)
    return result


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    ap = argparse.ArgumentParser(
        description="Compare mlx's training throughput with PyTorch's on the "
                    "Fashion-MNIST examples (one epoch each, same models and data), "
                    "on the CPU or the GPU.")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated subset of mlp,lenet,lstm (default: all)")
    ap.add_argument("--mlx", default=str(ROOT / "target" / "release" / "mlx"),
                    help="mlx binary (default: target/release/mlx)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per model and side, alternating mlx/PyTorch; medians are reported")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for both sides: MLX_THREADS, torch.set_num_threads (default 2)")
    ap.add_argument("--only", choices=["mlx", "torch"], help="run one side only")
    ap.add_argument("--json", metavar="FILE", help="also write all figures to FILE")
    ap.add_argument("--backend", choices=["cpu", "cuda"], default="cpu",
                    help="cpu (default), or cuda: mlx --backend cuda (built with --features "
                         "cuda) against PyTorch with .cuda()")
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--torch-child", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.torch_child:
        torch_child(args.torch_child, args.threads, args.limit, args.seed, args.backend)
        return

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        ap.error(f"unknown model(s) {bad}; choose from {','.join(MODELS)}")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    for p in (TRAIN_IMAGES, TRAIN_LABELS):
        if not p.is_file():
            raise SystemExit(f"{p} is missing: apt-get install -y dataset-fashion-mnist")

    sides = ["mlx", "torch"] if args.only is None else [args.only]
    mlx = Path(args.mlx)
    if not mlx.is_absolute():
        mlx = Path.cwd() / mlx
    if "mlx" in sides and not (mlx.is_file() and os.access(mlx, os.X_OK)):
        raise SystemExit(f"no mlx binary at {mlx}: run `cargo build --release` in {ROOT} "
                         "first, or pass --mlx PATH")
    if "torch" in sides:
        probe = subprocess.run([sys.executable, "-c", "import torch, numpy"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or [""])[-1]
            raise SystemExit(f"{last}\n" + TORCH_HINT.format(py=sys.executable))

    runs = {m: {"mlx": [], "torch": []} for m in models}
    for r in range(args.repeat):
        # Alternate which side goes first, so slow drifts of a noisy machine hit both.
        order = sides if r % 2 == 0 else list(reversed(sides))
        for m in models:
            for side in order:
                print(f"[{r + 1}/{args.repeat}] {m:5s} {'PyTorch' if side == 'torch' else 'mlx'} ...",
                      end=" ", flush=True, file=sys.stderr)
                if side == "mlx":
                    res = run_mlx(mlx, m, args.threads, args.backend)
                else:
                    res = run_torch(m, args.threads, args.limit, args.seed, args.backend)
                runs[m][side].append(res)
                print(f"{res['samples_per_second']:.0f} samples/s, "
                      f"{res['process_seconds']:.2f} s, {res['peak_mb']:.0f} MB",
                      file=sys.stderr)

    rows = []
    for m in models:
        mx, pt = runs[m]["mlx"], runs[m]["torch"]
        row = {
            "model": m,
            "mlx_samples_per_second": median_of(mx, "samples_per_second"),
            "torch_samples_per_second": median_of(pt, "samples_per_second"),
            "mlx_process_seconds": median_of(mx, "process_seconds"),
            "torch_process_seconds": median_of(pt, "process_seconds"),
            "mlx_peak_mb": median_of(mx, "peak_mb"),
            "torch_peak_mb": median_of(pt, "peak_mb"),
            "mlx_train_loss": median_of(mx, "train_loss"),
            "torch_train_loss": median_of(pt, "train_loss"),
        }
        row["throughput_ratio"] = ratio(row["mlx_samples_per_second"], row["torch_samples_per_second"])
        row["memory_ratio"] = ratio(row["mlx_peak_mb"], row["torch_peak_mb"])
        rows.append(row)

    head = ["model", "mlx samples/s", "PyTorch samples/s", "ratio (mlx/PT)",
            "mlx process s", "PyTorch process s", "mlx peak MB", "PyTorch peak MB",
            "memory ratio"]
    table = [[r["model"],
              fmt(r["mlx_samples_per_second"], ".0f"), fmt(r["torch_samples_per_second"], ".0f"),
              fmt(r["throughput_ratio"], ".2f"),
              fmt(r["mlx_process_seconds"], ".2f"), fmt(r["torch_process_seconds"], ".2f"),
              fmt(r["mlx_peak_mb"], ".0f"), fmt(r["torch_peak_mb"], ".0f"),
              fmt(r["memory_ratio"], ".2f")] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    line = lambda cells: " | ".join(c.rjust(w) if i else c.ljust(w)
                                    for i, (c, w) in enumerate(zip(cells, widths)))
    limited = f" (PyTorch limited to {args.limit} rows: a test, not a benchmark)" if args.limit else ""
    where = "GPU (cuda)" if args.backend == "cuda" else f"CPU, threads {args.threads}"
    print(f"{where}, one epoch of {TRAIN_ROWS} training rows{limited}, "
          f"batch {BATCH}, medians of {args.repeat} run(s)")
    print(line(head))
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(line(t))
    losses = [f"{r['model']} {fmt(r['mlx_train_loss'], '.3f')} / {fmt(r['torch_train_loss'], '.3f')}"
              for r in rows]
    print("epoch train loss, mlx / PyTorch (sanity check): " + ", ".join(losses))

    if args.json:
        torch_version = next((x["torch_version"] for m in models for x in runs[m]["torch"]), None)
        doc = {
            "backend": args.backend,
            "threads": args.threads,
            "repeat": args.repeat,
            "train_rows_torch": args.limit or TRAIN_ROWS,
            "batch": BATCH,
            "mlx_binary": str(mlx),
            "torch_version": torch_version,
            "python": platform.python_version(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "results": rows,
            "runs": runs,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
