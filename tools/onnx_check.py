"""Checks an ONNX file written by `scratchnet export` in runtimes other than scratchnet.

    /usr/bin/python3 tools/onnx_check.py model.onnx --data-dir data/mnist \
        [--predictions preds.txt] [--model model.safetensors] [--limit N]

1. onnx.checker.check_model (python3-onnx, with full shape inference) must accept the file;
   its input must have a dynamic batch dimension and its output must be named "logits".
2. The MNIST-format test images (t10k-images-idx3-ubyte[.gz] in --data-dir) go through the
   preprocessing the file records in metadata_props["preprocess"] (pixel / 255, then
   (x - mean) / std when it normalises, in float32 as scratchnet does) and through OpenCV's
   DNN module (cv2.dnn.readNetFromONNX) in batches; one image alone must give the same
   logits as in its batch (the batch dimension really is dynamic). With
   t10k-labels-idx1-ubyte[.gz] beside the images, OpenCV's accuracy is printed too.
3. --predictions: the classes `scratchnet eval MODEL --predictions FILE` wrote (one per
   line, same images in the same order) are compared with OpenCV's: "agree on N of M".
4. --model: the scratchnet model file the ONNX file came from. Its tensors must equal the
   initialisers, and a float64 NumPy forward pass of its layers (from the spec it records)
   gives reference logits: "logits: max abs difference D" is OpenCV's output against them.

Prints one line per check and exits 1 when any check fails: a disagreement, a logit
difference above --max-logit-diff, or a tensor that differs.
Needs Debian's python3-onnx, python3-opencv and python3-numpy.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import cv2
import numpy as np
import onnx
from onnx import numpy_helper


def read_idx(data_dir, name, dims, required):
    """The IDX array `name` (raw or .gz) in data_dir with `dims` dimensions, or None."""
    for path in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")):
        if os.path.exists(path):
            break
    else:
        if required:
            sys.exit(f"onnx_check: no {name}[.gz] in {data_dir}")
        return None
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic != 0x800 + dims:
        sys.exit(f"onnx_check: {path}: not a {dims}-D IDX file of bytes (magic {magic:08x})")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, count=int(np.prod(shape)), offset=4 + 4 * dims).reshape(shape)


def preprocess(images, meta):
    # As make_batch (dataset.cpp): x = p / 255 in float32, then (x - mean) / std.
    x = images.astype(np.float32) / np.float32(255)
    if meta.get("normalize"):
        x = (x - np.float32(meta["mean"])) / np.float32(meta["std"])
    return x


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    meta = header.pop("__metadata__", {})
    base = 8 + length
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin : base + end], dtype=dtypes[entry["dtype"]])
        tensors[name] = array.reshape(entry["shape"]).astype(np.float32)
    return tensors, meta


def windows(x, k, stride, padding, fill):
    """(N, C, H, W) -> (N, C, OH, OW, K, K): each pooling/convolution window."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return v[:, :, ::stride, ::stride]


def reference_forward(x, spec, tensors):
    """The model's eval-mode forward pass in float64 NumPy, layer by layer as the headers in
    include/scratchnet/layers/ define them."""
    x = x.astype(np.float64)
    t = {k: v.astype(np.float64) for k, v in tensors.items()}
    for i, layer in enumerate(spec["layers"]):
        kind = layer["type"]
        p = f"{i}."
        if kind == "Conv2d":
            win = windows(x, layer["kernel"], layer["stride"], layer["padding"], 0.0)
            x = np.tensordot(win, t[p + "weight"], axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
            if layer["bias"]:
                x = x + t[p + "bias"][None, :, None, None]
        elif kind == "MaxPool2d":
            x = windows(x, layer["kernel"], layer["stride"], layer["padding"], -np.inf).max(axis=(4, 5))
        elif kind == "AvgPool2d":
            k = layer["kernel"]
            x = windows(x, k, layer["stride"], layer["padding"], 0.0).sum(axis=(4, 5)) / (k * k)
        elif kind == "ReLU":
            x = np.maximum(x, 0)
        elif kind == "LeakyReLU":
            x = np.where(x > 0, x, layer["negative_slope"] * x)
        elif kind == "Tanh":
            x = np.tanh(x)
        elif kind == "Sigmoid":
            x = 1 / (1 + np.exp(-x))
        elif kind == "Flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "Linear":
            x = x @ t[p + "weight"].T
            if layer["bias"]:
                x = x + t[p + "bias"]
        elif kind in ("BatchNorm2d", "BatchNorm1d"):
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean, var = t[p + "running_mean"].reshape(shape), t[p + "running_var"].reshape(shape)
            scale, shift = t[p + "weight"].reshape(shape), t[p + "bias"].reshape(shape)
            x = (x - mean) / np.sqrt(var + layer["eps"]) * scale + shift
        elif kind == "Dropout":
            pass
        elif kind in ("Softmax", "LogSoftmax"):
            z = x - x.max(axis=1, keepdims=True)
            log_sum = np.log(np.exp(z).sum(axis=1, keepdims=True))
            x = np.exp(z - log_sum) if kind == "Softmax" else z - log_sum
        else:
            sys.exit(f"onnx_check: layer {i}: no reference for layer kind {kind}")
    return x


def run_opencv(path, x, batch):
    net = cv2.dnn.readNetFromONNX(path)
    outputs = []
    for begin in range(0, len(x), batch):
        net.setInput(np.ascontiguousarray(x[begin : begin + batch]))
        outputs.append(net.forward().copy())
    alone = None
    if len(x) > 1:  # one image on its own: a batch of a different size
        net.setInput(np.ascontiguousarray(x[1:2]))
        alone = net.forward().copy()
    return np.concatenate(outputs), alone


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx_file")
    parser.add_argument("--data-dir", required=True, help="directory with t10k-images-idx3-ubyte[.gz]")
    parser.add_argument("--predictions", help="classes from `scratchnet eval --predictions`")
    parser.add_argument("--model", help="the scratchnet model file (.safetensors) it came from")
    parser.add_argument("--limit", type=int, default=0, help="only the first N test images")
    parser.add_argument("--batch", type=int, default=500, help="images per OpenCV forward")
    parser.add_argument("--max-logit-diff", type=float, default=1e-3)
    args = parser.parse_args()
    failed = []

    model = onnx.load(args.onnx_file)
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}[""]
    graph = model.graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    print(f"checker: ok (ir {model.ir_version}, opset {opset}, {len(graph.node)} nodes, "
          f"input {graph.input[0].name} batch dimension '{batch_dim.dim_param}')")
    if not batch_dim.dim_param or graph.output[0].name != "logits":
        failed.append("graph input/output")
        print("FAIL the input needs a named batch dimension and the output the name 'logits'")

    meta = {p.key: p.value for p in model.metadata_props}
    pre = json.loads(meta["preprocess"])
    images = read_idx(args.data_dir, "t10k-images-idx3-ubyte", 3, True)
    n = min(args.limit, len(images)) if args.limit else len(images)
    x = preprocess(images[:n, None], pre)  # (N, 1, H, W)
    logits, alone = run_opencv(args.onnx_file, x, args.batch)
    predicted = logits.argmax(axis=1)  # the first maximum, as scratchnet's argmax_rows
    labels = read_idx(args.data_dir, "t10k-labels-idx1-ubyte", 1, False)
    accuracy = "" if labels is None else f", accuracy {100 * (labels[:n] == predicted).mean():.2f}%"
    print(f"opencv {cv2.__version__}: {n} images, logits {logits.shape}{accuracy}, preprocess {pre}")
    if alone is not None and np.abs(alone[0] - logits[1]).max() > 1e-5:
        failed.append("batch")
        print(f"FAIL image 1 alone differs from image 1 in a batch by {np.abs(alone[0] - logits[1]).max():.3g}")

    if args.predictions:
        with open(args.predictions) as f:
            theirs = np.array([int(line) for line in f if line.strip()])
        if len(theirs) < len(x):
            sys.exit(f"onnx_check: {args.predictions} has {len(theirs)} predictions, expected {len(x)}")
        agree = int((theirs[: len(x)] == predicted).sum())
        print(f"agree on {agree} of {len(x)} (OpenCV DNN vs scratchnet eval --predictions)")
        if agree != len(x):
            failed.append("agreement")
            print(f"FAIL differing images: {np.nonzero(theirs[: len(x)] != predicted)[0][:20].tolist()}")

    if args.model:
        tensors, file_meta = read_safetensors(args.model)
        initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        differing = [n for n, v in initializers.items() if v.dtype == np.float32 and
                     (n not in tensors or not np.array_equal(tensors[n], v))]
        if differing:
            failed.append("initializers")
            print(f"FAIL initialisers that differ from {args.model}: {differing}")
        spec = json.loads(file_meta["spec"])
        reference = np.concatenate([reference_forward(x[b : b + args.batch], spec, tensors)
                                    for b in range(0, len(x), args.batch)])
        diff = float(np.abs(reference - logits).max())
        ref_agree = int((reference.argmax(axis=1) == predicted).sum())
        print(f"logits: max abs difference {diff:.3g} (OpenCV DNN vs float64 NumPy on {args.model}); "
              f"classes agree on {ref_agree} of {len(x)}")
        if not diff <= args.max_logit_diff:
            failed.append("logits")
            print(f"FAIL logit difference {diff:.3g} > {args.max_logit_diff}")

    if failed:
        print(f"onnx_check: FAILED ({', '.join(failed)})")
        return 1
    print("onnx_check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
