#!/usr/bin/env python3
"""A Python serving stack (FastAPI + uvicorn + PyTorch, CPU) for trained mlx run directories:
the baseline that bench/serve_vs_python.py measures `mlx serve` against.

It serves the same weights as `mlx serve`, with the same API subset:

  POST /v1/models/NAME:predict   {"instances": [ROW, ...]} -> {"predictions": [...]}
  GET  /v1/models                {"models": [NAME, ...]}
  GET  /healthz                  {"status": "ok"}

NAME is the run's train name (`penguins_mlp`, `fashion_mlp`). A ROW is an object of raw
feature-column values (`{"bill_length_mm": 39.1, "island": "Torgersen", "sex": null}`; null,
an absent key or a missing-value token such as "NA" is a missing value), or for an image
feature `{"image": {"b64": "<base64 PNG/JPEG>"}}` or `{"image": [[[0..255, ...]]]}` (nested
arrays of raw pixel values, shaped as declared, e.g. [1, 28, 28]). A classifier answers
`{"label": "Adelie", "probabilities": {"Adelie": 0.97, ...}}` per row, a regression
`{"value": 1.23}`; a bad row is a 400 with `{"error": ..., "row": N, "field": ...}`.

From each run directory it reads:

  * preprocess.json: the fitted preprocessing, applied exactly as mlx applies it
    (src/data/transform.rs): steps in order in float64, then cast to float32; one-hot over
    the column's domain with only the training levels set; image bytes through a
    256-entry table.
  * model.safetensors: the weights. Only stacks of dense layers with ReLU between them are
    supported (both benchmark models are); each layer is a `[in, out]` weight `*.w` and a
    `[out]` bias `*.b`, chained in order. Dropout is the identity at inference.
  * input.json: the request schema, the class names and the missing-value tokens. When a run
    directory has none (older runs), the class names are read from the training data named
    in mlx.lock (sorted distinct target values of a CSV, 0..K-1 for IDX files).

Each request runs the model once on all its rows, inline on the event loop (no thread-pool
hop: the models take microseconds), with torch.set_num_threads(--threads). `--workers N`
starts N uvicorn worker processes; uvicorn uses uvloop and httptools when installed
(`uvicorn[standard]`), the fastest configuration of this stack.

Install:

    python3 -m pip install torch numpy fastapi "uvicorn[standard]" pillow

Usage:

    python3 bench/serve_python.py RUN_DIR... [--port 8081] [--host 127.0.0.1]
                                  [--threads 2] [--workers 1]
"""

import argparse
import base64
import binascii
import csv
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- run directories


class RowError(Exception):
    """A request row the model cannot use: answered with a 400."""

    def __init__(self, message, row=None, field=None):
        super().__init__(message)
        self.row, self.field = row, field

    def body(self):
        out = {"error": str(self)}
        if self.row is not None:
            out["row"] = self.row
        if self.field is not None:
            out["field"] = self.field
        return out


def read_safetensors(path):
    """{name: float32 array} from a safetensors file (8-byte little-endian header length, JSON
    header, raw data)."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = arr.copy()
    return tensors


def apply_step(step, x, strict=True):
    """One fitted step on float64 values x (NaN = missing), as mlx's transform::apply. `log1p`
    of a value below -1 raises ValueError(its index) when strict, and gives NaN otherwise."""
    kind = step["step"]
    if kind in ("impute_mean", "impute_median", "impute_mode", "impute_constant"):
        value = step["value"]
        return np.where(np.isnan(x), value, x) if isinstance(value, (int, float)) else x
    if kind in ("standardize", "normalize"):
        return (x - step["mean"]) / step["std"]
    if kind == "min_max":
        lo, hi = step["min"], step["max"]
        if hi <= lo:
            return np.where(np.isnan(x), x, 0.0)
        return (x - lo) / (hi - lo)
    if kind == "robust_scale":
        return (x - step["median"]) / step["iqr"]
    if kind == "scale":
        return x * step["factor"]
    if kind == "log1p":
        bad = x < -1.0
        if strict and np.any(bad):
            raise ValueError(int(np.argmax(bad)))
        with np.errstate(invalid="ignore"):
            return np.log1p(x)
    if kind in ("clip", "winsorize"):
        return np.clip(x, step["lo"], step["hi"])  # NaN stays NaN
    if kind == "drop_missing":
        return x
    raise AssertionError(f"unknown step {kind!r}")  # Served() checks the steps up front


STEPS = {"impute_mean", "impute_median", "impute_mode", "impute_constant", "drop_missing",
         "standardize", "normalize", "min_max", "robust_scale", "scale", "log1p", "clip",
         "winsorize", "one_hot", "ordinal"}


def apply_steps(steps, x, column, rows):
    """All steps on the values x of `rows` (request row indices, one per value or one for all)."""
    for s in steps:
        try:
            x = apply_step(s, x)
        except ValueError as e:
            i = e.args[0]
            raise RowError(f"`log1p` of {x[i]} in `{column}`: it needs values of at least -1",
                           row=rows[min(i, len(rows) - 1)], field=column) from None
    return x


def first_non_finite(column, x, rows):
    """A RowError for the first row whose value is not finite (missing and never filled in)."""
    bad = ~np.isfinite(x.astype(np.float32).reshape(len(x), -1)).all(axis=1)
    if np.any(bad):
        i = int(np.argmax(bad))
        why = "a missing value that no step fills in" if np.isnan(x[i]).any() else "an infinite value"
        return RowError(f"`{column}` has {why}", row=rows[i], field=column)
    return None


class NumericFeature:
    def __init__(self, f, missing):
        self.column, self.steps, self.missing, self.width = f["column"], f["steps"], missing, 1

    def value(self, v, row):
        if v is None or (isinstance(v, str) and v in self.missing):
            return np.nan
        try:
            if isinstance(v, bool):
                raise TypeError
            return float(v)  # a number, or a string holding one
        except (TypeError, ValueError):
            raise RowError(f"`{self.column}` must be a number, not {json.dumps(v)}",
                           row=row, field=self.column) from None

    def encode(self, values, out, rows):
        x = np.array([self.value(v, r) for v, r in zip(values, rows)], dtype=np.float64)
        x = apply_steps(self.steps, x, self.column, rows)
        if (err := first_non_finite(self.column, x, rows)) is not None:
            raise err
        out[:, 0] = x


class CategoryFeature:
    def __init__(self, f, missing):
        self.column, self.missing, self.width = f["column"], missing, f["width"]
        steps = f["steps"]
        at = next(i for i, s in enumerate(steps) if s["step"] in ("one_hot", "ordinal"))
        fills = [s["value"] for s in steps[:at]
                 if s["step"] in ("impute_mode", "impute_constant") and isinstance(s["value"], str)]
        self.fill = fills[0] if fills else None
        enc = steps[at]
        self.one_hot = enc["step"] == "one_hot"
        if self.one_hot:
            fitted = set(enc["fitted"])
            self.pos = {l: i for i, l in enumerate(enc["levels"]) if l in fitted}
        else:
            self.pos = {l: i for i, l in enumerate(enc["levels"])}
        self.post = steps[at + 1 :]

    def level(self, v, row):
        if v is None or (isinstance(v, str) and v in self.missing):
            if self.fill is None:
                raise RowError(f"`{self.column}` has a missing value that no step fills in",
                               row=row, field=self.column)
            return self.fill
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        if isinstance(v, (str, int, float)):
            return str(v)
        raise RowError(f"`{self.column}` must be a category level, not {json.dumps(v)}",
                       row=row, field=self.column)

    def encode(self, values, out, rows):
        levels = [self.level(v, r) for v, r in zip(values, rows)]
        if self.one_hot:  # unseen levels: all zeros
            for i, l in enumerate(levels):
                if (p := self.pos.get(l)) is not None:
                    out[i, p] = 1.0
            return
        x = np.array([self.pos.get(l, -1) for l in levels], dtype=np.float64)
        x = apply_steps(self.post, x, self.column, rows)
        if (err := first_non_finite(self.column, x, rows)) is not None:
            raise err
        out[:, 0] = x


class ImageFeature:
    def __init__(self, f, missing):
        self.column, self.steps, self.width = f["column"], f["steps"], f["width"]
        self.shape = tuple(f["kind"]["shape"])
        if len(self.shape) != 3 or self.shape[0] not in (1, 3):
            raise SystemExit(f"image `{self.column}`: shape {list(self.shape)} is not [1|3, H, W]")
        from PIL import Image

        self.open_image = Image.open
        # Per byte value, NaN where a step cannot take it (a pixel with that value is an error).
        lut = np.arange(256, dtype=np.float64)
        for s in self.steps:
            lut = apply_step(s, lut, strict=False)
        self.lut = lut.astype(np.float32)

    def pixels(self, v, row):
        """float32 [width] model input of one image."""
        def bad(why):
            return RowError(f"`{self.column}`: {why}", row=row, field=self.column)

        if isinstance(v, dict) and isinstance(v.get("b64"), str):
            try:
                img = self.open_image(io.BytesIO(base64.b64decode(v["b64"], validate=True)))
                mode = "L" if self.shape[0] == 1 else "RGB"
                img = img if img.mode == mode else img.convert(mode)
            except (binascii.Error, OSError, ValueError) as e:
                raise bad(f"cannot decode the image ({e})") from None
            c, h, w = self.shape
            if img.size != (w, h):
                raise bad(f"the image is {img.size[0]}x{img.size[1]}, expected {w}x{h}")
            px = np.asarray(img, dtype=np.uint8)
            px = px.reshape(1, h, w) if c == 1 else px.transpose(2, 0, 1)
            x = self.lut[px.reshape(-1)]
            if not np.all(np.isfinite(x)):
                raise bad("a pixel value is not finite after preprocessing")
            return x
        if isinstance(v, list):
            try:
                x = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                raise bad("the pixel values must be numbers") from None
            if x.shape != self.shape:
                raise bad(f"the pixel array has shape {list(x.shape)}, expected {list(self.shape)}")
            x = x.reshape(-1)
        else:
            raise bad('expected {"b64": "..."} or nested arrays of pixel values')
        x = apply_steps(self.steps, x, self.column, [row])
        if not np.all(np.isfinite(x.astype(np.float32))):
            raise bad("a pixel value is not finite after preprocessing")
        return x.astype(np.float32)

    def encode(self, values, out, rows):
        for i, (v, r) in enumerate(zip(values, rows)):
            out[i, :] = self.pixels(v, r)


ENCODERS = {"numeric": NumericFeature, "category": CategoryFeature, "tensor": ImageFeature}


def dense_stack(tensors, width):
    """[(w [in, out], b [out]), ...] in forward order, from the weight and bias tensors."""
    layers = {}
    for name, t in tensors.items():
        prefix, _, leaf = name.rpartition(".")
        if leaf in ("w", "b"):
            layers.setdefault(prefix, {})[leaf] = t
        else:
            raise SystemExit(f"model.safetensors: tensor {name} is not a dense weight or bias")
    # Natural order of the names (dense_2 before dense_10), then checked by chaining shapes.
    natural = lambda s: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]
    stack = []
    for prefix in sorted(layers, key=natural):
        wb = layers[prefix]
        if set(wb) != {"w", "b"} or wb["w"].ndim != 2 or wb["b"].shape != wb["w"].shape[1:]:
            raise SystemExit(f"model.safetensors: `{prefix}` is not a dense layer (w [in, out], b [out])")
        stack.append((prefix, wb["w"], wb["b"]))
    n_in = width
    for prefix, w, _ in stack:
        if w.shape[0] != n_in:
            raise SystemExit(f"model.safetensors: `{prefix}.w` is {list(w.shape)}, but its input "
                             f"has {n_in} values: not a chain of dense layers")
        n_in = w.shape[1]
    return stack


def class_names_from_data(run_dir, n):
    """Class names of a run without input.json (None for a regression): the sorted distinct
    target values of the CSV in mlx.lock, or 0..n-1 for IDX data."""
    m = re.search(r"\btarget\s+(\w+)\s*:\s*(\w+)", (run_dir / "spec.mlx").read_text())
    if m is None:
        raise SystemExit(f"{run_dir}: no input.json, and no target in spec.mlx")
    target, kind = m.groups()
    if kind != "Class":
        return None
    lock = json.loads((run_dir / "mlx.lock").read_text())
    csvs = [Path(d["path"]) for d in lock.get("data", []) if d["path"].endswith(".csv")]
    if not csvs:
        return [str(i) for i in range(n)]
    with open(csvs[0], newline="") as f:
        classes = sorted({row[target] for row in csv.DictReader(f)} - {"", "NA"})
    if len(classes) != n:
        raise SystemExit(f"{run_dir}: no input.json, and {csvs[0]} has {len(classes)} classes "
                         f"of `{target}`, the model {n} outputs")
    return classes


class Served:
    """One run directory, ready to predict."""

    def __init__(self, run_dir):
        import torch

        run_dir = Path(run_dir)
        pre = json.loads((run_dir / "preprocess.json").read_text())
        schema_path = run_dir / "input.json"
        schema = json.loads(schema_path.read_text()) if schema_path.is_file() else None
        missing = set(schema.get("missing", [])) if schema else {"NA"}
        for f in pre["features"]:
            unknown = [s["step"] for s in f["steps"] if s["step"] not in STEPS]
            if unknown or f["kind"]["type"] not in ENCODERS:
                raise SystemExit(f"{run_dir}: feature `{f['column']}` has a kind or step this "
                                 f"server does not know: {f['kind']['type']}, {unknown}")
        self.features = [ENCODERS[f["kind"]["type"]](f, missing) for f in pre["features"]]
        self.width = sum(e.width for e in self.features)

        tensors = read_safetensors(run_dir / "model.safetensors")
        stack = dense_stack(tensors, self.width)
        mods = []
        for i, (_, w, b) in enumerate(stack):
            lin = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T.copy()))  # mlx stores [in, out]
                lin.bias.copy_(torch.from_numpy(b))
            mods += [lin] if i == len(stack) - 1 else [lin, torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*mods).eval()
        n_out = stack[-1][1].shape[1]

        if schema is not None:
            self.name = schema["train"]
            target = schema["target"]
            self.classes = target.get("classes") if target.get("kind") == "class" else None
        else:
            self.name = json.loads((run_dir / "summary.json").read_text())["train"]
            self.classes = class_names_from_data(run_dir, n_out)
        if self.classes is not None and len(self.classes) != n_out:
            raise SystemExit(f"{run_dir}: {len(self.classes)} classes, but the model has "
                             f"{n_out} outputs")

    def predict(self, instances):
        import torch

        if not isinstance(instances, list) or not instances:
            raise RowError('the body must be {"instances": [ROW, ...]} with at least one row')
        for i, row in enumerate(instances):
            if not isinstance(row, dict):
                raise RowError("a row must be an object of feature values", row=i)
        rows = list(range(len(instances)))
        x = np.zeros((len(instances), self.width), dtype=np.float32)
        at = 0
        for e in self.features:
            e.encode([r.get(e.column) for r in instances], x[:, at : at + e.width], rows)
            at += e.width
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x))
            if self.classes is None:
                return [{"value": v} for v in out[:, 0].tolist()]
            probs = torch.softmax(out, dim=1).numpy()
        best = probs.argmax(axis=1)  # the first of equal maxima, as mlx
        return [{"label": self.classes[k], "probabilities": dict(zip(self.classes, p))}
                for k, p in zip(best.tolist(), probs.tolist())]


# --------------------------------------------------------------------------- HTTP


def create_app(run_dirs, threads):
    # torch is imported here, not at the top, so that main() sets OMP_NUM_THREADS first.
    import torch
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    torch.set_num_threads(threads)
    models = {}
    for d in run_dirs:
        m = Served(d)
        if m.name in models:
            raise SystemExit(f"two run directories serve the model `{m.name}`")
        models[m.name] = m

    app = FastAPI(title="serve_python", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz():
        return JSONResponse({"status": "ok"})

    @app.get("/v1/models")
    async def list_models():
        return JSONResponse({"models": sorted(models)})

    @app.post("/v1/models/{name}:predict")
    async def predict(name: str, request: Request):
        model = models.get(name)
        if model is None:
            return JSONResponse({"error": f"no model `{name}`"}, status_code=404)
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            return JSONResponse({"error": f"the body is not JSON: {e}"}, status_code=400)
        try:
            if not isinstance(body, dict):
                raise RowError('the body must be {"instances": [ROW, ...]}')
            return JSONResponse({"predictions": model.predict(body.get("instances"))})
        except RowError as e:
            return JSONResponse(e.body(), status_code=400)

    return app


def app_from_env():
    """The app of a uvicorn worker process (`--workers` > 1), configured by main()."""
    cfg = json.loads(os.environ["SERVE_PYTHON_CONFIG"])
    return create_app(cfg["run_dirs"], cfg["threads"])


def main():
    ap = argparse.ArgumentParser(
        description="Serve mlx run directories with FastAPI + uvicorn + PyTorch (CPU).")
    ap.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch.set_num_threads per worker (default 2)")
    ap.add_argument("--workers", type=int, default=1,
                    help="uvicorn worker processes (default 1)")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import uvicorn

    run_dirs = [str(Path(d).resolve()) for d in args.run_dirs]
    opts = dict(host=args.host, port=args.port, log_level="warning", access_log=False)
    if args.workers == 1:
        app = create_app(run_dirs, args.threads)  # fail here, before binding, on a bad run
        uvicorn.run(app, **opts)
    else:
        create_app(run_dirs, args.threads)  # check every run directory once, up front
        os.environ["SERVE_PYTHON_CONFIG"] = json.dumps({"run_dirs": run_dirs,
                                                        "threads": args.threads})
        uvicorn.run("serve_python:app_from_env", factory=True, workers=args.workers,
                    app_dir=str(Path(__file__).resolve().parent), **opts)


if __name__ == "__main__":
    sys.exit(main())
