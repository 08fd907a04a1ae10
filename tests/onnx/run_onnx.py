"""Run an ONNX model exported by `mlx export` in onnxruntime on raw rows, as a user would.

usage: run_onnx.py MODEL.onnx INPUT OUT.json

INPUT is a CSV file with a header (one column per graph input; numbers parsed, anything else
in a number column is missing: NaN) or an IDX image file (.gz or not) for an image model.
First checks the model with onnx.checker (full_check). Writes every output as JSON lists,
NaN as null. Used by the integration tests (tests/it/export.rs) and shown in the README.
"""
import csv
import gzip
import json
import math
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, kind, rank = struct.unpack(">HBB", data[:4])
    assert zero == 0 and kind == 0x08, "an unsigned-byte IDX file"
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    return np.frombuffer(data[4 + 4 * rank :], dtype=np.uint8).reshape(dims)


def number(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


def feeds(session, path):
    inputs = session.get_inputs()
    if path.endswith(".csv"):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        out = {}
        for i in inputs:
            if i.type == "tensor(string)":
                out[i.name] = np.array([[r[i.name]] for r in rows], dtype=object)
            elif i.type == "tensor(double)":
                out[i.name] = np.array([[number(r[i.name])] for r in rows], dtype=np.float64)
            else:
                out[i.name] = np.array([[number(r[i.name])] for r in rows], dtype=np.float32)
        return out
    images = read_idx(path).astype(np.float32)
    (i,) = inputs
    shape = [images.shape[0]] + [int(d) for d in i.shape[1:]]
    return {i.name: images.reshape(shape)}


def plain(v):
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v]
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode()
    if isinstance(v, str):
        return v
    v = float(v)
    return None if math.isnan(v) else v


def main():
    model_path, input_path, out_path = sys.argv[1:4]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feeds(session, input_path))
    doc = {n: plain(r) for n, r in zip(names, results)}
    doc["metadata"] = {p.key: p.value for p in model.metadata_props}
    doc["opset"] = {o.domain: o.version for o in model.opset_import}
    with open(out_path, "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
