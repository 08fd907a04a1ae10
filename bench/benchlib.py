"""Shared by the benchmarks against PyTorch: mlx's random streams and row orders re-implemented
in Python, the IDX reader, and running the mlx binary.

mlx draws its data split from the stream `split` and each epoch's batch order from the stream
`shuffle/epoch-N` (src/rng.rs, src/data/split.rs). The PyTorch halves of
`gan_vs_pytorch.py` and `autoencoder_vs_pytorch.py` use these functions so that they train on
exactly the rows mlx trains on, in exactly mlx's order; only the weights' initial values and
the generator's noise come from PyTorch's own generator.

Everything here is pure Python integer arithmetic on 64-bit words (masked), bit for bit the
Rust code:

    key(seed, name)    FNV-1a of the name, mixed with the seed (SplitMix64 finaliser)
    Rng.below(n)       uniform in 0..n by rejection (no modulo bias)
    Rng.shuffle(v)     Fisher-Yates from the end
    holdout_rows(n, val_fraction, seed)   mlx's `holdout(val: f)` on n rows without classes
    shuffled_batches(rows, batch, seed, epoch)

The rest: `read_idx` (Fashion-MNIST's files), `png_grid` (an image grid as PNG without
PIL), `default_mlx` (where the binary is looked for) and `run_mlx` (one `mlx` command, timed,
with its run directory found).

`python3 bench/benchlib.py` prints a few reference values (used to check this file against
the Rust code).
"""

import gzip
import os
import struct
import subprocess
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/usr/share/datasets/fashion-mnist")
TRAIN_IMAGES = DATA / "train-images-idx3-ubyte.gz"
TRAIN_LABELS = DATA / "train-labels-idx1-ubyte.gz"
TEST_IMAGES = DATA / "t10k-images-idx3-ubyte.gz"
TEST_LABELS = DATA / "t10k-labels-idx1-ubyte.gz"
TORCH_HINT = (
    "PyTorch is needed for the PyTorch side: python3 -m venv VENV && "
    "VENV/bin/pip install torch numpy safetensors onnx onnxruntime, then run this script "
    "with VENV/bin/python"
)

M64 = (1 << 64) - 1
GOLDEN = 0x9E37_79B9_7F4A_7C15


def mix(z):
    """The SplitMix64 finaliser."""
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB) & M64
    return z ^ (z >> 31)


def key(seed, name):
    h = 0xCBF2_9CE4_8422_2325
    for b in name.encode():
        h ^= b
        h = (h * 0x0100_0000_01B3) & M64
    return mix((mix((seed ^ GOLDEN) & M64) + h) & M64)


class Rng:
    """A sequential reader over the stream `name` under `seed` (src/rng.rs `Rng`)."""

    def __init__(self, seed, name):
        self.key = key(seed, name)
        self.counter = 0

    def next_u64(self):
        v = mix((self.key + (((self.counter + 1) * GOLDEN) & M64)) & M64)
        self.counter += 1
        return v

    def below(self, n):
        if n <= 1:
            return 0
        zone = M64 - (M64 % n)
        while True:
            v = self.next_u64()
            if v < zone:
                return v % n

    def shuffle(self, v):
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]
        return v


def largest_remainder(n, fractions):
    """Counts proportional to `fractions` summing to n (src/data/split.rs)."""
    fr = [max(f, 0.0) for f in fractions]
    total = sum(fr)
    if total <= 0.0 or not fractions:
        return [n] + [0] * (len(fractions) - 1) if fractions else []
    exact = [n * f / total for f in fr]
    counts = [int(e // 1) for e in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - (exact[i] // 1)), i))
    for i in order[: max(n - sum(counts), 0)]:
        counts[i] += 1
    return counts


def holdout_rows(n, val, seed):
    """(train, val) row indices of mlx's `holdout(val: val)` over rows 0..n of the training
    source, for a dataset without a class target (so one group, nothing stratified): the rows
    shuffled with the stream `split`, the first share to training, each part sorted."""
    group = Rng(seed, "split").shuffle(list(range(n)))
    n_train, _ = largest_remainder(n, [1.0 - val, val])
    return sorted(group[:n_train]), sorted(group[n_train:])


def shuffled_batches(rows, batch, seed, epoch):
    """mlx's batches for epoch `epoch` (0-based): `rows` shuffled with `shuffle/epoch-N`, cut
    into chunks of `batch`, the last possibly smaller."""
    order = Rng(seed, f"shuffle/epoch-{epoch}").shuffle(list(rows))
    return [order[i : i + batch] for i in range(0, len(order), max(batch, 1))]


# --------------------------------------------------------------------------- files


def read_idx(path, magic):
    """An IDX file (gzip or plain) as a numpy array of its declared shape."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path} is missing: apt-get install -y dataset-fashion-mnist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise SystemExit(f"{path}: IDX magic {got:#x}, expected {magic:#x}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def png_grid(path, images, cols=8, pad=2):
    """Write grey images (uint8 [N, H, W]) as one PNG grid, `cols` across, `pad` pixels of
    black between them; plain zlib, no PIL."""
    n, h, w = images.shape
    rows = (n + cols - 1) // cols
    width, height = cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad
    canvas = bytearray(width * height)
    for k in range(n):
        top, left = pad + (k // cols) * (h + pad), pad + (k % cols) * (w + pad)
        for y in range(h):
            at = (top + y) * width + left
            canvas[at : at + w] = images[k, y].tobytes()
    scan = b"".join(b"\x00" + bytes(canvas[y * width : (y + 1) * width]) for y in range(height))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(scan, 9))
           + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


# --------------------------------------------------------------------------- mlx


def default_mlx():
    """The mlx binary: the first that exists of $CARGO_TARGET_DIR/release/mlx,
    <repo>/target/release/mlx and <repo>/../target-main/release/mlx (else the second)."""
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "mlx")
    candidates += [ROOT / "target" / "release" / "mlx",
                   ROOT.parent / "target-main" / "release" / "mlx"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return ROOT / "target" / "release" / "mlx"


def usable_binary(path):
    return path is not None and Path(path).is_file() and os.access(path, os.X_OK)


def run_mlx(mlx, args, threads, out=None):
    """Run `mlx ARGS` from the repository root with MLX_THREADS=threads. Returns
    (stdout, wall seconds, run directory or None): the run directory is the last line of
    stdout when that names a directory (as `mlx run -q` prints it), else the newest
    `<out>/<train>/<run id>` below `out`. Exits with the command's stderr on failure."""
    env = dict(os.environ, MLX_THREADS=str(threads))
    cmd = [str(mlx), *map(str, args)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-25:])
        raise SystemExit(f"mlx failed (exit {p.returncode}):\n  {' '.join(cmd)}\n{tail}")
    rundir = None
    lines = p.stdout.strip().splitlines()
    if lines:
        cand = Path(lines[-1].strip())
        cand = cand if cand.is_absolute() else ROOT / cand
        if cand.is_dir():
            rundir = cand
    if rundir is None and out is not None:
        runs = [d for d in Path(out).glob("*/*")
                if d.is_dir() and not d.name.startswith(".")]
        rundir = max(runs, key=lambda d: d.stat().st_mtime, default=None)
    return p.stdout, wall, rundir


if __name__ == "__main__":
    r = Rng(7, "split")
    print("u64", [r.next_u64() for _ in range(3)])
    print("below", [Rng(1, "x").below(k) for k in (3, 10, 1000)])
    print("shuffle", shuffled_batches(list(range(20)), 7, 7, 3))
    tr, va = holdout_rows(60000, 0.1, 1)
    print("holdout", len(tr), len(va), va[:5], sum(va))
    print("largest_remainder", largest_remainder(10, [0.7, 0.2, 0.1]),
          largest_remainder(7, [0.5, 0.5]))
