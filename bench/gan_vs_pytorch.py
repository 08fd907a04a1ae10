#!/usr/bin/env python3
"""GAN sample quality: mlx's examples/fashion_gan.mlx against the same GAN in PyTorch.

What is measured
  Both sides train the same generative adversarial network on the 60,000 Fashion-MNIST
  training images, and one classifier scores both sides' samples:
  - mean top-class probability over the samples (is each sample clearly *some* garment?), and
  - the entropy, in nats, of the histogram of predicted classes (argmax) over the samples
    (do the samples cover the ten classes? ln 10 = 2.303 at most),
  an Inception-Score-like pair. The same figures for real test images are printed as the
  reference. mlx writes 64 samples, so PyTorch is scored on its first 64 samples as well as
  on 1,000, and the relative difference mlx vs PyTorch is on 64 against 64. Wall time of each
  side is reported too (mlx: the whole `mlx run` process; PyTorch: training, and the whole
  script side including data loading).

How
  PyTorch (this process, --threads threads): exactly the model, data and optimizer of
  fashion_gan.mlx. Pixels (p - 127.5) / 127.5, in [-1, 1]. Generator Linear(64,256)-ReLU-
  Linear(256,512)-ReLU-Linear(512,784)-Tanh reshaped to [B,1,28,28]; discriminator Flatten-
  Linear(784,256)-ReLU-Linear(256,128)-ReLU-Linear(128,1). Weights glorot (xavier) uniform,
  biases zero, as mlx's `dense`. Both Adam(lr 2e-4, betas (0.5, 0.999), eps 1e-8). Batch 64,
  the last partial batch kept; the batch order of every epoch is mlx's own (the stream
  `shuffle/epoch-N`, re-implemented bit for bit in benchlib.py). Per batch: the discriminator
  step, BCEWithLogits(d(real), 1) + BCEWithLogits(d(g(z).detach()), 0), updating only d; then
  the generator step with fresh noise, BCEWithLogits(d(g(z)), 1), updating only g. The noise
  and the initial weights come from PyTorch's generator (seed --seed), so the two sides do
  not start from the same numbers: the comparison is of distributions, not of bits.
  mlx: `mlx run examples/fashion_gan.mlx --out TMP -q` (plus `--set epochs=N` when --epochs
  is not 10), then the tensor `samples` (f32 [64, 1, 28, 28], generator output in [-1, 1]) of
  `<run dir>/samples.safetensors`. Or --mlx-samples FILE scores a file already written.
  Classifier: by default trained by mlx (`mlx run examples/fashion_mlp.mlx`, then
  `mlx export RUN -o clf.onnx`) and run with onnxruntime; --classifier standin trains the same
  MLP in PyTorch instead and writes it as ONNX by hand; --classifier-onnx FILE takes any ONNX
  model with that convention: a float input [N, 1, 28, 28] of raw pixel values 0..255, and
  class probabilities [N, K] out (the output named `probabilities` when there is one).
  Samples become pixels as clip((x + 1) * 127.5, 0, 255).

Usage
  VENV/bin/python bench/gan_vs_pytorch.py                      # both sides, mlx's classifier
  VENV/bin/python bench/gan_vs_pytorch.py --only torch --classifier standin
  VENV/bin/python bench/gan_vs_pytorch.py --mlx-samples RUN/samples.safetensors --only mlx \\
      --classifier-onnx clf.onnx
  options: --epochs N (10), --seed N (1), --threads N (2), --mlx PATH, --json FILE,
  --png FILE (the PyTorch samples as an 8 x 8 grid, default gan_pytorch.png; mlx's beside
  it as gan_pytorch-mlx.png),
  --save-classifier FILE (keep the ONNX classifier that was used), --save-samples FILE
  (PyTorch's 64 samples as safetensors, tensor `samples`, the layout mlx writes).
  The sampling noise of a 64-sample figure (its standard deviation over the 15 disjoint sets
  of 64 among PyTorch's 1,000 samples) is printed too, and the mlx-PyTorch difference in
  those units: a difference within about 2 sd is what two equally good GANs would show.
"""

import argparse
import json
import math
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

LATENT = 64
BATCH = 64
EPOCHS = 10
LR = 2e-4
BETAS = (0.5, 0.999)
TORCH_SAMPLES = 1000
MLX_SAMPLES = 64
# The normalisation of examples/fashion_data.mlx, for the stand-in classifier.
CLF_MEAN, CLF_STD = 0.2860, 0.3530


# --------------------------------------------------------------------------- classifier


class OnnxClassifier:
    """An ONNX classifier taking raw pixels [N, 1, 28, 28] (float 0..255), giving
    probabilities [N, K]."""

    def __init__(self, path, threads):
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path))
        init_names = {i.name for i in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in init_names]
        floats = [i for i in inputs if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
        if len(floats) != 1 or len(inputs) != 1:
            raise SystemExit(f"{path}: expected one float input of raw pixels, found "
                             + ", ".join(f"{i.name} ({i.type.tensor_type.elem_type})"
                                         for i in inputs))
        self.input = floats[0].name
        dims = [d.dim_param or d.dim_value for d in floats[0].type.tensor_type.shape.dim]
        outputs = {o.name: o for o in model.graph.output}
        if "probabilities" in outputs:
            self.output = "probabilities"
        else:
            two_d = [o.name for o in model.graph.output
                     if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                     and len(o.type.tensor_type.shape.dim) == 2]
            if not two_d:
                raise SystemExit(f"{path}: no float [N, K] output among {list(outputs)}")
            self.output = two_d[0]
        self.describe = (f"input {self.input} {dims}, output {self.output}; "
                         f"all outputs: {list(outputs)}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def probabilities(self, pixels):
        """pixels: float32 [N, 1, 28, 28] in 0..255."""
        import numpy as np

        out = []
        for at in range(0, len(pixels), 500):
            chunk = np.ascontiguousarray(pixels[at : at + 500], dtype=np.float32)
            (p,) = self.session.run([self.output], {self.input: chunk})
            out.append(np.asarray(p, dtype=np.float64))
        p = np.concatenate(out)
        # Tolerate a model that returns logits: probabilities are non-negative and sum to 1.
        if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
            e = np.exp(p - p.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
        return p


def scores(probs):
    """Mean top-class probability and the entropy (nats) of the argmax class histogram."""
    import numpy as np

    top = probs.max(axis=1)
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    share = counts[counts > 0] / counts.sum()
    return {
        "samples": int(len(probs)),
        "mean_top_prob": float(top.mean()),
        "class_entropy_nats": float(-(share * np.log(share)).sum()),
        "class_counts": [int(c) for c in counts],
    }


def to_pixels(x):
    """Generator output in [-1, 1] (any shape with 784 values a row) to float pixels
    [N, 1, 28, 28] in 0..255."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28)
    return np.clip((x + 1.0) * 127.5, 0.0, 255.0)


def standin_classifier(path, threads, seed, epochs=5):
    """Train fashion_mlp's MLP in PyTorch (784-256-ReLU-128-ReLU-10, Adam 1e-3, batch 128,
    pixels /255 then normalised as fashion_data.mlx) on the 60,000 training images and write
    it as ONNX by hand (raw pixels in, `probabilities` out). Returns its test accuracy."""
    import numpy as np
    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(seed)
    images = benchlib.read_idx(benchlib.TRAIN_IMAGES, 0x803)
    labels = benchlib.read_idx(benchlib.TRAIN_LABELS, 0x801)
    x_all = torch.from_numpy(images.astype(np.float32)).div_(255.0).sub_(CLF_MEAN).div_(CLF_STD)
    y_all = torch.from_numpy(labels.astype(np.int64))
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y_all), generator=gen)
        for at in range(0, len(perm), 128):
            idx = perm[at : at + 128]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x_all[idx]), y_all[idx]).backward()
            opt.step()

    lin = [m for m in net if isinstance(m, nn.Linear)]
    inits = [numpy_helper.from_array(np.array(v, dtype=np.float32), name) for name, v in [
        ("scale", 1.0 / (255.0 * CLF_STD)), ("shift", CLF_MEAN / CLF_STD)]]
    for i, m in enumerate(lin):
        inits.append(numpy_helper.from_array(m.weight.detach().numpy().astype(np.float32), f"w{i}"))
        inits.append(numpy_helper.from_array(m.bias.detach().numpy().astype(np.float32), f"b{i}"))
    nodes = [
        helper.make_node("Mul", ["image", "scale"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "shift"], ["normalized"]),
        helper.make_node("Flatten", ["normalized"], ["h0"], axis=1),
        helper.make_node("Gemm", ["h0", "w0", "b0"], ["z1"], transB=1),
        helper.make_node("Relu", ["z1"], ["h1"]),
        helper.make_node("Gemm", ["h1", "w1", "b1"], ["z2"], transB=1),
        helper.make_node("Relu", ["z2"], ["h2"]),
        helper.make_node("Gemm", ["h2", "w2", "b2"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "fashion_mlp_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

    # The ONNX file must agree with the network it was written from, and classify.
    test_x = benchlib.read_idx(benchlib.TEST_IMAGES, 0x803).astype(np.float32)[:, None]
    test_y = benchlib.read_idx(benchlib.TEST_LABELS, 0x801)
    probs = OnnxClassifier(path, threads).probabilities(test_x)
    with torch.no_grad():
        ref = F.softmax(net(torch.from_numpy(test_x[:200] / 255.0).sub(CLF_MEAN).div(CLF_STD)),
                        dim=1).numpy()
    gap = float(np.abs(ref - probs[:200]).max())
    if gap > 1e-4:
        raise SystemExit(f"stand-in classifier: ONNX and PyTorch differ by {gap}")
    return float((probs.argmax(axis=1) == test_y).mean())


def mlx_classifier(mlx, path, threads, workdir):
    """Train examples/fashion_mlp.mlx with mlx and export it to `path`. Returns seconds."""
    out = Path(workdir) / "clf-runs"
    _, wall, rundir = benchlib.run_mlx(
        mlx, ["run", ROOT / "examples" / "fashion_mlp.mlx", "--out", out, "-q"], threads, out)
    if rundir is None:
        raise SystemExit(f"mlx trained fashion_mlp but no run directory was found under {out}")
    _, wall2, _ = benchlib.run_mlx(mlx, ["export", rundir, "-o", path], threads)
    return wall + wall2


# --------------------------------------------------------------------------- PyTorch GAN


def build_gan():
    import torch.nn as nn

    generator = nn.Sequential(
        nn.Linear(LATENT, 256), nn.ReLU(),
        nn.Linear(256, 512), nn.ReLU(),
        nn.Linear(512, 784), nn.Tanh(),
        nn.Unflatten(1, (1, 28, 28)),
    )
    discriminator = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 1),
    )
    for m in [*generator, *discriminator]:
        if isinstance(m, nn.Linear):  # mlx's `dense`: glorot_uniform weights, zero biases
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return generator, discriminator


def train_torch_gan(epochs, seed, threads, limit=0):
    """Train the GAN; return (samples [1000, 1, 28, 28] numpy in [-1, 1], a report dict).
    `limit` > 0 trains on that many rows only (a test of this script, not a benchmark)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    images = benchlib.read_idx(benchlib.TRAIN_IMAGES, 0x803)  # [60000, 28, 28] uint8
    x_all = torch.from_numpy(images.astype(np.float32)).sub_(127.5).div_(127.5).unsqueeze(1)
    rows = list(range(len(x_all)))  # no split: every row trains
    if limit:
        rows = rows[:limit]

    g, d = build_gan()
    opt_g = torch.optim.Adam(g.parameters(), lr=LR, betas=BETAS, eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=LR, betas=BETAS, eps=1e-8)
    noise = torch.Generator().manual_seed(seed)

    t0 = time.perf_counter()
    history = []
    for epoch in range(epochs):
        te = time.perf_counter()
        d_sum = g_sum = 0.0
        for batch in benchlib.shuffled_batches(rows, BATCH, seed, epoch):
            real = x_all[torch.tensor(batch)]
            b = len(batch)
            ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)

            # discriminate: updates d; the fakes are constants (stop_gradient).
            d.requires_grad_(True)
            with torch.no_grad():
                fake = g(torch.randn(b, LATENT, generator=noise))
            loss_d = (F.binary_cross_entropy_with_logits(d(real), ones)
                      + F.binary_cross_entropy_with_logits(d(fake), zeros))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            # generate: updates g; gradients flow through d, which stays as it is.
            d.requires_grad_(False)
            loss_g = F.binary_cross_entropy_with_logits(
                d(g(torch.randn(b, LATENT, generator=noise))), ones)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

            d_sum += loss_d.item() * b
            g_sum += loss_g.item() * b
        n = len(rows)
        history.append({"epoch": epoch + 1, "discriminate": d_sum / n, "generate": g_sum / n,
                        "seconds": time.perf_counter() - te})
        print(f"  PyTorch epoch {epoch + 1}/{epochs}: discriminate {d_sum / n:.4f}  "
              f"generate {g_sum / n:.4f}  ({time.perf_counter() - te:.1f} s)",
              file=sys.stderr, flush=True)
    train_seconds = time.perf_counter() - t0

    with torch.no_grad():
        z = torch.randn(TORCH_SAMPLES, LATENT, generator=torch.Generator().manual_seed(seed + 1))
        samples = g(z).numpy()
    return samples, {
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "epochs": history,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- mlx GAN


def read_mlx_samples(path):
    """The tensor `samples` of a safetensors file (or its only tensor), as float32."""
    import numpy as np
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if "samples" in tensors:
        x = tensors["samples"]
    elif len(tensors) == 1:
        (name, x), = tensors.items()
        print(f"note: {path} has no tensor `samples`; using its only tensor `{name}`",
              file=sys.stderr)
    else:
        raise SystemExit(f"{path}: no tensor `samples`; it holds "
                         + ", ".join(f"{k} {list(v.shape)}" for k, v in tensors.items()))
    if x.size % 784:
        raise SystemExit(f"{path}: `samples` has shape {list(x.shape)}, not [N, 1, 28, 28]")
    if x.shape[1:] != (1, 28, 28):
        print(f"note: `samples` has shape {list(x.shape)}; read as [N, 1, 28, 28]",
              file=sys.stderr)
    x = x.astype(np.float32).reshape(-1, 1, 28, 28)
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.001 or hi > 1.001:
        print(f"warning: mlx samples range over [{lo:.3f}, {hi:.3f}], not [-1, 1]",
              file=sys.stderr)
    return x


def run_mlx_gan(mlx, program, epochs, threads, workdir):
    out = Path(workdir) / "gan-runs"
    args = ["run", program, "--out", out, "-q"]
    if epochs != EPOCHS:
        args += ["--set", f"epochs={epochs}"]
    _, wall, rundir = benchlib.run_mlx(mlx, args, threads, out)
    path = rundir / "samples.safetensors" if rundir else None
    if path is None or not path.is_file():
        found = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        raise SystemExit(f"mlx ran {program} but wrote no samples.safetensors in its run "
                         f"directory {rundir}; files under {out}: {found[:40]}")
    summary = {}
    try:
        summary = json.loads((rundir / "summary.json").read_text())
    except (OSError, ValueError):
        pass
    return read_mlx_samples(path), {"process_seconds": wall,
                                    "run_wall_seconds": summary.get("wall_seconds"),
                                    "samples_file": str(path)}


# --------------------------------------------------------------------------- report


def spread_of_64(probs):
    """The sampling noise of a 64-sample figure: mean and standard deviation of each figure
    over the disjoint sets of 64 among `probs` (15 of them in 1,000)."""
    import numpy as np

    sets = [scores(probs[at : at + MLX_SAMPLES])
            for at in range(0, len(probs) - MLX_SAMPLES + 1, MLX_SAMPLES)]
    if len(sets) < 2:
        return None
    out = {"sets": len(sets)}
    for k in ("mean_top_prob", "class_entropy_nats"):
        v = np.array([s[k] for s in sets])
        out[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1))}
    return out


def rel(a, b):
    return (a - b) / b if a is not None and b else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(
        description="Score mlx's fashion_gan samples and an identical PyTorch GAN's with one "
                    "classifier (mean top-class probability, entropy of the class histogram).")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help="epochs, both sides (10)")
    ap.add_argument("--seed", type=int, default=1,
                    help="PyTorch's seed and mlx's batch-order seed (1, as fashion_gan.mlx)")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for PyTorch, onnxruntime and MLX_THREADS (2)")
    ap.add_argument("--mlx", default=None,
                    help=f"mlx binary (default: {benchlib.default_mlx()})")
    ap.add_argument("--mlx-program", default=str(ROOT / "examples" / "fashion_gan.mlx"),
                    help="the mlx GAN program (examples/fashion_gan.mlx)")
    ap.add_argument("--mlx-samples", metavar="FILE",
                    help="score this samples.safetensors instead of running mlx")
    ap.add_argument("--only", choices=["mlx", "torch"], help="one side only")
    ap.add_argument("--classifier", choices=["mlx", "standin"], default="mlx",
                    help="mlx: train examples/fashion_mlp.mlx and export it (default); "
                         "standin: the same MLP trained by PyTorch")
    ap.add_argument("--classifier-onnx", metavar="FILE",
                    help="score with this ONNX model (raw pixels [N,1,28,28] in, "
                         "probabilities out) instead of training one")
    ap.add_argument("--save-classifier", metavar="FILE", help="keep the classifier's ONNX here")
    ap.add_argument("--png", metavar="FILE", default="gan_pytorch.png",
                    help="the PyTorch samples as an 8 x 8 grid (gan_pytorch.png); mlx's "
                         "samples go beside it as FILE-mlx.png; '' for none")
    ap.add_argument("--save-samples", metavar="FILE",
                    help="write PyTorch's 64 samples as safetensors (tensor `samples`, as mlx's)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    import numpy as np

    # mlx runs from the repository root: paths given relative to here are made absolute.
    mlx = Path(args.mlx).absolute() if args.mlx else benchlib.default_mlx()
    args.mlx_program = str(Path(args.mlx_program).absolute())
    have_mlx = benchlib.usable_binary(mlx)
    run_torch = args.only != "mlx"
    run_mlx_side = args.only != "torch"
    if run_mlx_side and not args.mlx_samples and not have_mlx:
        if args.only == "mlx" or args.mlx:
            raise SystemExit(f"no mlx binary at {mlx}: build it, pass --mlx PATH, or score a "
                             "file with --mlx-samples")
        print(f"note: no mlx binary at {mlx}: the mlx side is skipped", file=sys.stderr)
        run_mlx_side = False
    if not args.classifier_onnx and args.classifier == "mlx" and not have_mlx:
        raise SystemExit(f"no mlx binary at {mlx} to train the scoring classifier: pass "
                         "--classifier standin or --classifier-onnx FILE")

    work = tempfile.mkdtemp(prefix="mlx-gan-bench-")
    try:
        # The classifier.
        if args.classifier_onnx:
            clf_path, clf_kind, clf_note = Path(args.classifier_onnx), "onnx file", {}
        elif args.classifier == "mlx":
            clf_path, clf_kind = Path(work) / "classifier.onnx", "mlx fashion_mlp"
            print("training the classifier with mlx (examples/fashion_mlp.mlx) ...",
                  file=sys.stderr, flush=True)
            clf_note = {"seconds": mlx_classifier(mlx, clf_path, args.threads, work)}
        else:
            import torch

            torch.set_num_threads(args.threads)
            clf_path, clf_kind = Path(work) / "classifier.onnx", "PyTorch stand-in MLP"
            print("training the stand-in classifier with PyTorch ...", file=sys.stderr,
                  flush=True)
            t0 = time.perf_counter()
            acc = standin_classifier(clf_path, args.threads, args.seed)
            clf_note = {"seconds": time.perf_counter() - t0, "test_accuracy": acc}
        clf = OnnxClassifier(clf_path, args.threads)
        print(f"classifier ({clf_kind}): {clf.describe}", file=sys.stderr)
        if args.save_classifier:
            shutil.copyfile(clf_path, args.save_classifier)

        test_x = benchlib.read_idx(benchlib.TEST_IMAGES, 0x803)[:TORCH_SAMPLES, None]
        real_probs = clf.probabilities(test_x.astype(np.float32))
        real = {"1000": scores(real_probs), "64": scores(real_probs[:MLX_SAMPLES])}
        # A sanity check of the classifier, assuming its outputs are in label order 0..9
        # (the two figures do not depend on the order: only the accuracy printed here does).
        labels = benchlib.read_idx(benchlib.TEST_LABELS, 0x801)[:TORCH_SAMPLES]
        clf_note["accuracy_first_1000_test"] = float((real_probs.argmax(axis=1) == labels).mean())
        print(f"classifier accuracy on the first 1,000 test images: "
              f"{clf_note['accuracy_first_1000_test']:.3f}", file=sys.stderr)

        # The two GANs.
        torch_res = mlx_res = None
        if run_torch:
            print(f"training the PyTorch GAN, {args.epochs} epochs ...", file=sys.stderr,
                  flush=True)
            samples, info = train_torch_gan(args.epochs, args.seed, args.threads, args.limit)
            probs = clf.probabilities(to_pixels(samples))
            torch_res = {"1000": scores(probs), "64": scores(probs[:MLX_SAMPLES]),
                         "spread_of_64": spread_of_64(probs), **info}
            if args.save_samples:
                from safetensors.numpy import save_file

                save_file({"samples": np.ascontiguousarray(samples[:MLX_SAMPLES])},
                          args.save_samples)
            if args.png:
                grid = to_pixels(samples[:MLX_SAMPLES]).round().astype(np.uint8)[:, 0]
                benchlib.png_grid(args.png, grid)
        if run_mlx_side:
            if args.mlx_samples:
                samples, info = read_mlx_samples(args.mlx_samples), {
                    "samples_file": args.mlx_samples}
            else:
                print(f"training the mlx GAN ({args.mlx_program}), {args.epochs} epochs ...",
                      file=sys.stderr, flush=True)
                samples, info = run_mlx_gan(mlx, args.mlx_program, args.epochs, args.threads,
                                            work)
            probs = clf.probabilities(to_pixels(samples))
            mlx_res = {"64": scores(probs[:MLX_SAMPLES]), **info}
            if len(samples) != MLX_SAMPLES:
                mlx_res["all"] = scores(probs)
            if args.png:
                png = Path(args.png)
                grid = to_pixels(samples[:MLX_SAMPLES]).round().astype(np.uint8)[:, 0]
                benchlib.png_grid(png.with_name(png.stem + "-mlx" + png.suffix), grid)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # The table.
    rows = [("real t10k images", "1000", real["1000"]), ("real t10k images", "64", real["64"])]
    if torch_res:
        rows += [("PyTorch GAN", "1000", torch_res["1000"]), ("PyTorch GAN", "64", torch_res["64"])]
    if mlx_res:
        rows += [("mlx GAN", "64", mlx_res["64"])]
    print(f"classifier: {clf_kind}; {args.epochs} epochs, seed {args.seed}, "
          f"{args.threads} threads; entropy at most ln 10 = {math.log(10):.3f}")
    head = ["samples of", "n", "mean top prob", "class entropy (nats)", "class histogram"]
    body = [[who, n, f"{s['mean_top_prob']:.4f}", f"{s['class_entropy_nats']:.4f}",
             " ".join(map(str, s["class_counts"]))] for who, n, s in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt_row = lambda cells: " | ".join(c.ljust(w) if i in (0, 4) else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(cells, widths)))
    print(fmt_row(head))
    print("-+-".join("-" * w for w in widths))
    for b in body:
        print(fmt_row(b))

    spread = torch_res["spread_of_64"] if torch_res else None
    compare = None
    if torch_res and mlx_res:
        a, b = mlx_res["64"], torch_res["64"]
        compare = {
            "mean_top_prob_rel_diff": rel(a["mean_top_prob"], b["mean_top_prob"]),
            "class_entropy_rel_diff": rel(a["class_entropy_nats"], b["class_entropy_nats"]),
        }
        if spread:
            # How many sampling-noise standard deviations apart the two 64-sample figures are.
            compare["mean_top_prob_diff_in_sd"] = (
                (a["mean_top_prob"] - b["mean_top_prob"]) / spread["mean_top_prob"]["sd"])
            compare["class_entropy_diff_in_sd"] = (
                (a["class_entropy_nats"] - b["class_entropy_nats"])
                / spread["class_entropy_nats"]["sd"])
            # Against the mean over PyTorch's 64-sample sets: less noise on PyTorch's side.
            compare["mean_top_prob_rel_diff_vs_sets"] = rel(
                a["mean_top_prob"], spread["mean_top_prob"]["mean"])
            compare["class_entropy_rel_diff_vs_sets"] = rel(
                a["class_entropy_nats"], spread["class_entropy_nats"]["mean"])
        print(f"mlx vs PyTorch, 64 samples each: mean top prob "
              f"{compare['mean_top_prob_rel_diff']:+.1%}, class entropy "
              f"{compare['class_entropy_rel_diff']:+.1%}"
              + (f" ({compare['mean_top_prob_diff_in_sd']:+.1f} and "
                 f"{compare['class_entropy_diff_in_sd']:+.1f} sd of sampling noise)"
                 if spread else ""))
        if spread:
            print(f"mlx vs the mean of PyTorch's {spread['sets']} sets of 64: mean top prob "
                  f"{compare['mean_top_prob_rel_diff_vs_sets']:+.1%}, class entropy "
                  f"{compare['class_entropy_rel_diff_vs_sets']:+.1%}")
    if spread:
        print(f"sampling noise of a 64-sample figure (sd over {spread['sets']} disjoint sets of "
              f"64 PyTorch samples): mean top prob "
              f"{spread['mean_top_prob']['sd']:.4f}, class entropy "
              f"{spread['class_entropy_nats']['sd']:.4f}")
    if torch_res:
        print(f"PyTorch {torch_res['torch_version']}: training {torch_res['train_seconds']:.1f} s, "
              f"with data loading and sampling {torch_res['total_seconds']:.1f} s")
    if mlx_res and "process_seconds" in mlx_res:
        print(f"mlx: `mlx run` process {mlx_res['process_seconds']:.1f} s "
              f"(run wall {fmt(mlx_res.get('run_wall_seconds'), '.1f')} s)")

    if args.json:
        doc = {
            "benchmark": "gan_vs_pytorch",
            "epochs": args.epochs,
            "seed": args.seed,
            "threads": args.threads,
            "classifier": {"kind": clf_kind, "path": args.classifier_onnx, **clf_note},
            "real_test_images": real,
            "torch": torch_res,
            "mlx": mlx_res,
            "mlx_vs_torch_64": compare,
            "mlx_binary": str(mlx) if have_mlx else None,
            "python": platform.python_version(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
