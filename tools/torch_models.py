"""PyTorch side of scratchnet: model files, data sets and the reference models in torch.

Used by tools/torch_eval.py and tools/torch_train.py (run with Debian's python3-torch 1.13;
only numpy and torch are needed).

- read_safetensors(path) / write_safetensors(path, model, ...): the safetensors format
  (8-byte little-endian header length, JSON header, raw little-endian data), read and written
  by hand. Files written here are scratchnet model files: tensors under their state_dict names
  as F32 (num_batches_tracked as an F32 0-d tensor), laid out as scratchnet writes them, with
  the metadata of include/scratchnet/io/model_file.h.
- build_model(spec) -> nn.Sequential: the exact torch equivalent of a scratchnet model spec
  (include/scratchnet/model_spec.h); layer i of the spec is module i, so parameter names match.
  spec_from_model() goes the other way.
- load_model_file(path): a scratchnet model file as (torch model, info), strict.
- load_idx(), load_split(), resolve_dataset(), preprocess(): MNIST-format data, preprocessed
  exactly as scratchnet's make_batch does (float32 p / 255, then (x - mean) / std).
- PRESET_SPECS, PRESET_RECIPES, make_preset(), make_optimizer(): the reference models `basic`
  and `bn` (include/scratchnet/presets.h) and their recipes.
- evaluate(): loss, predictions and confusion matrix as scratchnet's evaluate() computes them.
"""
import gzip
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "scratchnet-model/1"
MAX_HEADER = 100 * 1000 * 1000  # bytes, as scratchnet's reader allows

DIGITS = [str(i) for i in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
DATASET_CLASSES = {"mnist": DIGITS, "fashion-mnist": FASHION}


class ToolError(Exception):
    """A one-line message for the user (the scripts print it and exit with status 1)."""


# ---------------------------------------------------------------------------------------------
# safetensors

_DTYPES = {  # safetensors dtype -> (numpy little-endian dtype, bytes per element)
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U8": ("u1", 1), "BOOL": ("?", 1),
}


def read_safetensors(path):
    """Returns (dict name -> torch tensor, metadata dict of strings). Checks every header field
    against the file size; errors are ToolError naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ToolError(f"{path}: cannot open: {e.strerror}") from None
    if len(raw) < 8:
        raise ToolError(f"{path}: not a safetensors file: {len(raw)} bytes, shorter than the "
                        "8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER or n > len(raw) - 8:
        raise ToolError(f"{path}: not a safetensors file: header length {n} does not fit a "
                        f"file of {len(raw)} bytes")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ToolError(f"{path}: not a safetensors file: the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ToolError(f"{path}: not a safetensors file: the header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ToolError(f"{path}: __metadata__ must be an object of strings")
    tensors, spans = {}, []
    for name, entry in header.items():
        where = f'{path}: tensor "{name}"'
        if not isinstance(entry, dict):
            raise ToolError(f"{where}: entry is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPES:
            raise ToolError(f"{where}: dtype {dtype!r} is not supported "
                            f"(known: {', '.join(_DTYPES)})")
        if (not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in shape)):
            raise ToolError(f"{where}: shape must be a list of non-negative integers, "
                            f"got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= len(data)):
            raise ToolError(f"{where}: data_offsets {offsets!r} do not fit the "
                            f"{len(data)} bytes of data")
        np_dtype, size = _DTYPES[dtype]
        numel = math.prod(shape)
        if offsets[1] - offsets[0] != numel * size:
            raise ToolError(f"{where}: data_offsets {offsets} do not match shape "
                            f"{tuple(shape)} of {dtype} ({numel * size} bytes)")
        spans.append((offsets[0], offsets[1], name))
        array = np.frombuffer(data[offsets[0]:offsets[1]], dtype=np_dtype).reshape(shape)
        tensors[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
    spans.sort()
    for (b0, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ToolError(f'{path}: tensors "{n0}" and "{n1}" overlap')
    return tensors, metadata


def save_safetensors(path, tensors, metadata=None):
    """Writes name -> tensor as F32, names sorted, data contiguous from offset 0, header padded
    with spaces to a multiple of 8 bytes, metadata keys sorted: the layout scratchnet writes.
    Goes to <path>.tmp first and is renamed, so a crash never leaves a half-written file."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().to(torch.float32).numpy()
        a = np.asarray(t, dtype="<f4")
        a = np.ascontiguousarray(a).reshape(a.shape)  # ascontiguousarray makes 0-d 1-d
        blob = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v)
                                  for k, v in sorted(metadata.items())}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ToolError(f"{path}: cannot write: {e.strerror}") from None


def _dumps(obj):
    """JSON as scratchnet writes it (nlohmann::json::dump: sorted keys, no spaces)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Model specs <-> torch modules

def _pool_stride(o):
    return o["stride"] if o.get("stride", 0) else o["kernel"]


# type -> (option names and defaults; None = the input size, inferred when left out)
_LAYER_OPTIONS = {
    "Conv2d": {"in_channels": None, "out_channels": 0, "kernel": 0, "stride": 1, "padding": 0,
               "bias": True},
    "MaxPool2d": {"kernel": 0, "stride": 0, "padding": 0},
    "AvgPool2d": {"kernel": 0, "stride": 0, "padding": 0},
    "Linear": {"in_features": None, "out_features": 0, "bias": True},
    "BatchNorm2d": {"num_features": None, "eps": 1e-5, "momentum": 0.1},
    "BatchNorm1d": {"num_features": None, "eps": 1e-5, "momentum": 0.1},
    "Dropout": {"p": 0.5, "seed": 0},
    "LeakyReLU": {"negative_slope": 0.01},
    "ReLU": {}, "Tanh": {}, "Sigmoid": {}, "Flatten": {}, "Softmax": {}, "LogSoftmax": {},
}
_INT_OPTIONS = {"in_channels", "out_channels", "kernel", "stride", "padding", "in_features",
                "out_features", "num_features", "seed"}
_BOOL_OPTIONS = {"bias"}


def _make_layer(kind, o):
    if kind == "Conv2d":
        return nn.Conv2d(o["in_channels"], o["out_channels"], o["kernel"], stride=o["stride"],
                         padding=o["padding"], bias=o["bias"])
    if kind == "MaxPool2d":
        return nn.MaxPool2d(o["kernel"], stride=_pool_stride(o), padding=o["padding"])
    if kind == "AvgPool2d":
        return nn.AvgPool2d(o["kernel"], stride=_pool_stride(o), padding=o["padding"],
                            count_include_pad=True)
    if kind == "Linear":
        return nn.Linear(o["in_features"], o["out_features"], bias=o["bias"])
    if kind == "BatchNorm2d":
        return nn.BatchNorm2d(o["num_features"], eps=o["eps"], momentum=o["momentum"])
    if kind == "BatchNorm1d":
        return nn.BatchNorm1d(o["num_features"], eps=o["eps"], momentum=o["momentum"])
    if kind == "Dropout":
        return nn.Dropout(o["p"])
    if kind == "LeakyReLU":
        return nn.LeakyReLU(o["negative_slope"])
    if kind == "Softmax":
        return nn.Softmax(dim=1)
    if kind == "LogSoftmax":
        return nn.LogSoftmax(dim=1)
    return {"ReLU": nn.ReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid,
            "Flatten": nn.Flatten}[kind]()


def _check_input(kind, o, shape, where):
    """The input sizes a layer names must be those reaching it (per-sample shape)."""
    need = {"Conv2d": (3, "in_channels"), "BatchNorm2d": (3, "num_features"),
            "Linear": (1, "in_features"), "BatchNorm1d": (1, "num_features")}.get(kind)
    if need is None:
        return
    dims, key = need
    if len(shape) != dims:
        raise ToolError(f"{where}: needs {'(C, H, W)' if dims == 3 else '(features)'} inputs, "
                        f"got {shape}" + (" (add a Flatten first)" if dims == 1 else ""))
    if shape[0] != o[key]:
        raise ToolError(f"{where}: {key} is {o[key]} but the input {shape} has {shape[0]}")


def build_model(spec, source="model spec"):
    """The torch.nn.Sequential a scratchnet model spec (JSON text or dict) describes. Input
    sizes left out are inferred; shapes are checked by running a zero sample through each layer.
    Returns the model in eval mode with its "input" shape as model.input_shape."""
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ToolError(f"{source}: not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise ToolError(f'{source}: a model spec must be a JSON object with "input" and "layers"')
    for key in spec:
        if key not in ("input", "layers", "name"):
            raise ToolError(f"{source}: unknown key '{key}' (known: input, layers, name)")
    shape = spec.get("input", [1, 28, 28])
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
        raise ToolError(f'{source}: "input" must be the per-sample shape, e.g. [1, 28, 28], '
                        f"got {json.dumps(shape)}")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ToolError(f'{source}: "layers" must be a non-empty array of layers')
    modules = []
    x = torch.zeros(1, *shape)
    for index, entry in enumerate(layers):
        where = f"{source}: layer {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ToolError(f'{where}: expected an object with a "type", got {json.dumps(entry)}')
        kind = entry["type"]
        if kind not in _LAYER_OPTIONS:
            raise ToolError(f"{where}: unknown layer type '{kind}' "
                            f"(known: {', '.join(_LAYER_OPTIONS)})")
        where += " " + kind
        known = _LAYER_OPTIONS[kind]
        for key in entry:
            if key != "type" and key not in known:
                raise ToolError(f"{where}: unknown option '{key}' "
                                f"(known: {', '.join(sorted(known)) or 'none'})")
        o = {}
        for key, default in known.items():
            v = entry.get(key, default)
            if v is None:  # the input size: the incoming channels or features
                v = x.shape[1] if x.dim() > 1 else 0
            if key in _INT_OPTIONS and (not isinstance(v, int) or isinstance(v, bool)):
                raise ToolError(f"{where}: option '{key}' must be an integer, got {json.dumps(v)}")
            if key in _BOOL_OPTIONS and not isinstance(v, bool):
                raise ToolError(f"{where}: option '{key}' must be true or false, "
                                f"got {json.dumps(v)}")
            if (key not in _INT_OPTIONS | _BOOL_OPTIONS
                    and (not isinstance(v, (int, float)) or isinstance(v, bool))):
                raise ToolError(f"{where}: option '{key}' must be a number, got {json.dumps(v)}")
            o[key] = v
        _check_input(kind, o, tuple(x.shape[1:]), where)
        try:
            module = _make_layer(kind, o).eval()
            if kind == "Dropout":
                module.scratchnet_seed = o["seed"]  # kept so spec_from_model writes it back
            with torch.no_grad():
                x = module(x)
        except (RuntimeError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ToolError(f"{where}: does not fit input {tuple(x.shape[1:])}: {first}") from None
        modules.append(module)
    model = nn.Sequential(*modules)
    model.input_shape = list(shape)
    model.output_shape = list(x.shape[1:])
    return model.eval()


def _square(v, what, i):
    if isinstance(v, tuple):
        if len(set(v)) != 1:
            raise ToolError(f"layer {i}: {what} {v} is not square; scratchnet needs one value")
        return v[0]
    return v


def spec_from_model(model, input_shape):
    """The scratchnet model spec (dict) of an nn.Sequential made of the supported layers.
    Options scratchnet cannot express are errors naming the layer."""
    layers = []
    for i, m in enumerate(model):
        def need(ok, what):
            if not ok:
                raise ToolError(f"layer {i} ({type(m).__name__}): {what} is not supported")
        if isinstance(m, nn.Conv2d):
            need(m.groups == 1 and _square(m.dilation, "dilation", i) == 1
                 and m.padding_mode == "zeros" and not isinstance(m.padding, str),
                 "groups, dilation, string padding or non-zero padding mode")
            e = {"type": "Conv2d", "in_channels": m.in_channels, "out_channels": m.out_channels,
                 "kernel": _square(m.kernel_size, "kernel", i),
                 "stride": _square(m.stride, "stride", i),
                 "padding": _square(m.padding, "padding", i), "bias": m.bias is not None}
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            need(not m.ceil_mode, "ceil_mode")
            if isinstance(m, nn.MaxPool2d):
                need(_square(m.dilation, "dilation", i) == 1 and not m.return_indices,
                     "dilation or return_indices")
            else:
                need(m.count_include_pad and m.divisor_override is None,
                     "count_include_pad=False or divisor_override")
            kernel = _square(m.kernel_size, "kernel", i)
            e = {"type": type(m).__name__, "kernel": kernel,
                 "stride": _square(m.stride, "stride", i) or kernel,
                 "padding": _square(m.padding, "padding", i)}
        elif isinstance(m, nn.Linear):
            e = {"type": "Linear", "in_features": m.in_features, "out_features": m.out_features,
                 "bias": m.bias is not None}
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            need(m.affine and m.track_running_stats and m.momentum is not None,
                 "affine=False, track_running_stats=False or momentum=None")
            e = {"type": type(m).__name__, "num_features": m.num_features, "eps": m.eps,
                 "momentum": m.momentum}
        elif isinstance(m, nn.Dropout):
            e = {"type": "Dropout", "p": m.p, "seed": getattr(m, "scratchnet_seed", 0)}
        elif isinstance(m, nn.LeakyReLU):
            e = {"type": "LeakyReLU", "negative_slope": m.negative_slope}
        elif isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            need(m.dim == 1, f"dim={m.dim} (only dim=1)")
            e = {"type": type(m).__name__}
        elif isinstance(m, nn.Flatten):
            need(m.start_dim == 1 and m.end_dim == -1, "start_dim/end_dim other than 1/-1")
            e = {"type": "Flatten"}
        elif type(m) in (nn.ReLU, nn.Tanh, nn.Sigmoid):
            e = {"type": type(m).__name__}
        else:
            raise ToolError(f"layer {i}: {type(m).__name__} has no scratchnet equivalent")
        layers.append(e)
    return {"input": list(input_shape), "layers": layers}


# ---------------------------------------------------------------------------------------------
# Model files

def write_safetensors(path, model, preprocessing, class_names, input_shape=None, recipe=None,
                      metrics=None, origin=None):
    """Writes `model` (an nn.Sequential of supported layers) as a scratchnet model file.
    preprocessing: {"normalize", "mean", "std"}; recipe and metrics: dicts or JSON text;
    input_shape defaults to model.input_shape (set by build_model/make_preset)."""
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ToolError("write_safetensors: give input_shape, e.g. [1, 28, 28]")
    spec = spec_from_model(model, input_shape)
    build_model(spec, "the model to write")  # the spec must build and fit its input
    tensors = {k: v.detach().to(torch.float32) for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "spec": _dumps(spec),
                "preprocess": _dumps(preprocess_json(preprocessing)),
                "class_names": _dumps(list(class_names))}
    if recipe is not None:
        metadata["recipe"] = recipe if isinstance(recipe, str) else _dumps(recipe)
    if metrics is not None:
        metadata["metrics"] = metrics if isinstance(metrics, str) else _dumps(metrics)
    if origin:
        metadata["origin"] = origin
    save_safetensors(path, tensors, metadata)


def load_model_file(path):
    """A scratchnet model file as (torch model in eval mode, info dict with "preprocess",
    "class_names", "spec", "recipe", "metrics", "origin"). Every tensor must be present with the
    architecture's shape and nothing extra (a checkpoint's "optimizer.*" tensors are ignored)."""
    if not os.path.exists(path):
        raise ToolError(f"{path}: no such file")
    tensors, meta = read_safetensors(path)
    if "format" in meta and meta["format"] != FORMAT:
        raise ToolError(f"{path}: model format '{meta['format']}' is not supported "
                        f"(expected '{FORMAT}')")
    for key in ("format", "spec", "preprocess", "class_names"):
        if key not in meta:
            raise ToolError(f"{path}: not a scratchnet model: metadata has no '{key}'")
    model = build_model(meta["spec"], f"{path} (architecture)")
    try:
        pre = json.loads(meta["preprocess"])
        if not isinstance(pre, dict):
            raise ValueError
        unknown = set(pre) - {"scale", "normalize", "mean", "std"}
        if unknown:
            raise ToolError(f"{path} (preprocess): unknown field '{sorted(unknown)[0]}'")
    except (json.JSONDecodeError, ValueError):
        raise ToolError(f"{path}: preprocess must be a JSON object") from None
    pre = {"normalize": bool(pre.get("normalize", False)), "mean": float(pre.get("mean", 0.0)),
           "std": float(pre.get("std", 1.0))}
    try:
        class_names = json.loads(meta["class_names"])
        if not isinstance(class_names, list) or not all(isinstance(c, str) for c in class_names):
            raise ValueError
    except (json.JSONDecodeError, ValueError):
        raise ToolError(f"{path}: class_names must be a JSON array of strings") from None

    wanted = model.state_dict()
    state = {}
    for name, target in wanted.items():
        if name not in tensors:
            raise ToolError(f"{path}: tensor '{name}' is missing; the architecture needs "
                            f"{tuple(target.shape)}")
        t = tensors[name]
        if tuple(t.shape) != tuple(target.shape):
            raise ToolError(f"{path}: tensor '{name}' has shape {tuple(t.shape)} but the "
                            f"architecture needs {tuple(target.shape)}")
        if target.dtype == torch.int64:  # num_batches_tracked, stored as F32 by scratchnet
            t = t.to(torch.float64).round()
        state[name] = t.to(target.dtype)
    for name in tensors:
        if name not in wanted and not name.startswith("optimizer."):
            raise ToolError(f"{path}: tensor '{name}' does not belong to the architecture")
    model.load_state_dict(state, strict=True)
    outputs = math.prod(model.output_shape)
    if class_names and len(class_names) != outputs:
        raise ToolError(f"{path}: {len(class_names)} class names for a model with "
                        f"{outputs} outputs")
    info = {"preprocess": pre, "class_names": class_names, "spec": json.loads(meta["spec"]),
            "recipe": meta.get("recipe"), "metrics": meta.get("metrics"),
            "origin": meta.get("origin")}
    return model.eval(), info


# ---------------------------------------------------------------------------------------------
# Data

def load_idx(path):
    """An unsigned-byte IDX file (raw or gzip, detected from the content) as a uint8 tensor of
    the header's shape. The size must match the header exactly."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ToolError(f"{path}: cannot open: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ToolError(f"{path}: corrupt gzip data: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ToolError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise ToolError(f"{path}: IDX data type 0x{raw[2]:02x} is not supported "
                        "(only 0x08, unsigned byte)")
    ndim = raw[3]
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise ToolError(f"{path}: truncated IDX header")
    dims = list(struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim]))
    body = len(raw) - 4 - 4 * ndim
    if math.prod(dims) != body:
        raise ToolError(f"{path}: header says {dims} ({math.prod(dims)} bytes) but the file "
                        f"holds {body} bytes of data")
    array = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return torch.from_numpy(array.copy())


def _find_idx(directory, name):
    for candidate in (name, name + ".gz"):
        p = os.path.join(directory, candidate)
        if os.path.exists(p):
            return p
    raise ToolError(f"{directory}: missing {name} (or {name}.gz)")


def load_split(directory, split):
    """split "train" or "t10k": (uint8 images (N, H, W), int64 labels (N))."""
    if split not in ("train", "t10k"):
        raise ToolError(f"unknown split '{split}' (known: train, t10k)")
    if not os.path.isdir(directory):
        raise ToolError(f"{directory}: not a directory")
    images_path = _find_idx(directory, f"{split}-images-idx3-ubyte")
    labels_path = _find_idx(directory, f"{split}-labels-idx1-ubyte")
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.dim() != 3:
        raise ToolError(f"{images_path}: expected images (N, H, W), got {tuple(images.shape)}")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ToolError(f"{labels_path}: expected {images.shape[0]} labels, "
                        f"got shape {tuple(labels.shape)}")
    return images, labels.to(torch.int64)


def resolve_dataset(name_or_dir, data_dir="data"):
    """(directory, class names) for a data set name ("mnist", "fashion-mnist": looked up under
    data_dir) or a directory of IDX files (classes "0".."9", as scratchnet names them)."""
    if name_or_dir in DATASET_CLASSES and not os.path.isdir(name_or_dir):
        directory = os.path.join(data_dir, name_or_dir)
        if not os.path.isdir(directory):
            raise ToolError(f"{directory}: not found (fetch it with "
                            f"`bash scripts/fetch-data.sh {name_or_dir}`)")
        return directory, list(DATASET_CLASSES[name_or_dir])
    if not os.path.isdir(name_or_dir):
        raise ToolError(f"{name_or_dir}: not a directory of IDX files nor a known data set "
                        f"(known: {', '.join(DATASET_CLASSES)})")
    return name_or_dir, list(DIGITS)


def class_names_for(labels, names):
    """names, extended to "0".."max label" when the labels go higher (as scratchnet does)."""
    top = int(labels.max()) if labels.numel() else 0
    if top >= len(names):
        return [str(i) for i in range(top + 1)]
    return names


def preprocess_json(p):
    return {"scale": 1.0 / 255.0, "normalize": bool(p["normalize"]),
            "mean": float(p.get("mean", 0.0)), "std": float(p.get("std", 1.0))}


def preprocess(images, p):
    """uint8 images (N, H, W) -> float32 (N, 1, H, W): x = pixel / 255, then (x - mean) / std
    when p["normalize"]. Computed in float32 operation by operation (true division, no
    reciprocal), exactly as scratchnet's make_batch."""
    a = images.numpy().astype(np.float32) / np.float32(255.0)
    if p.get("normalize"):
        a = (a - np.float32(p["mean"])) / np.float32(p["std"])
    return torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(1)


# ---------------------------------------------------------------------------------------------
# Reference models (include/scratchnet/presets.h)

def _conv(cin, cout, padding=0):
    return {"type": "Conv2d", "in_channels": cin, "out_channels": cout, "kernel": 3, "stride": 1,
            "padding": padding, "bias": True}


def _bn(kind, n):
    return {"type": kind, "num_features": n, "eps": 1e-5, "momentum": 0.1}


_RELU = {"type": "ReLU"}
_POOL = {"type": "MaxPool2d", "kernel": 2, "stride": 2, "padding": 0}
_FLAT = {"type": "Flatten"}


def _linear(i, o):
    return {"type": "Linear", "in_features": i, "out_features": o, "bias": True}


PRESET_SPECS = {
    # 0 Conv2d(1, 32, 3) 1 ReLU 2 MaxPool2d(2) 3 Conv2d(32, 64, 3) 4 ReLU 5 MaxPool2d(2)
    # 6 Flatten 7 Linear(1600, 128) 8 ReLU 9 Linear(128, 10): 225,034 parameters
    "basic": {"input": [1, 28, 28], "layers": [
        _conv(1, 32), _RELU, _POOL, _conv(32, 64), _RELU, _POOL, _FLAT,
        _linear(1600, 128), _RELU, _linear(128, 10)]},
    # 0 Conv2d(1, 32, 3, padding=1) 1 BatchNorm2d(32) 2 ReLU 3 Conv2d(32, 64, 3, padding=1)
    # 4 BatchNorm2d(64) 5 ReLU 6 MaxPool2d(2) 7 Flatten 8 Linear(12544, 128) 9 BatchNorm1d(128)
    # 10 ReLU 11 Linear(128, 10): 1,626,314 parameters
    "bn": {"input": [1, 28, 28], "layers": [
        _conv(1, 32, 1), _bn("BatchNorm2d", 32), _RELU, _conv(32, 64, 1),
        _bn("BatchNorm2d", 64), _RELU, _POOL, _FLAT, _linear(12544, 128),
        _bn("BatchNorm1d", 128), _RELU, _linear(128, 10)]},
}
PRESET_PARAMETERS = {"basic": 225034, "bn": 1626314}


def _recipe(optimizer, lr, momentum, epochs, normalize, mean=0.0, std=1.0):
    """A recipe with every field of scratchnet's Recipe (src/train/recipe.cpp)."""
    return {"optimizer": optimizer, "lr": lr, "momentum": momentum, "nesterov": False,
            "weight_decay": 0.0, "batch_size": 64, "epochs": epochs, "seed": 1,
            "init": "pytorch", "label_smoothing": 0.0,
            "preprocess": preprocess_json({"normalize": normalize, "mean": mean, "std": std})}


PRESET_RECIPES = {
    "basic": _recipe("adam", 1e-3, 0.0, 5, False),
    "bn": _recipe("sgd", 0.01, 0.9, 10, True, 0.1307, 0.3081),
}


def make_preset(name):
    """The reference model `name` ("basic" or "bn") with PyTorch's default initialisation from
    the current torch RNG state (seed it with torch.manual_seed first)."""
    if name not in PRESET_SPECS:
        raise ToolError(f"unknown preset '{name}' (known: {', '.join(PRESET_SPECS)})")
    model = build_model(PRESET_SPECS[name], f"preset {name}")
    count = sum(p.numel() for p in model.parameters())
    assert count == PRESET_PARAMETERS[name], (name, count)
    return model


def evaluate(model, images, labels, batch):
    """(mean loss, predictions (N), confusion (K, K) [true][predicted]) in eval mode."""
    model.eval()
    loss_sum, predicted = 0.0, []
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            x, y = images[start:start + batch], labels[start:start + batch]
            out = model(x)
            loss_sum += F.cross_entropy(out, y).item() * y.shape[0]
            predicted.append(out.argmax(dim=1))
    predicted = torch.cat(predicted)
    k = model.output_shape[0]
    confusion = torch.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    return loss_sum / images.shape[0], predicted, confusion


def make_optimizer(recipe, params):
    """The torch optimiser a recipe names (Adam and AdamW with torch's default betas/eps)."""
    kind, lr, wd = recipe["optimizer"], recipe["lr"], recipe.get("weight_decay", 0.0)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.get("momentum", 0.0),
                               nesterov=recipe.get("nesterov", False), weight_decay=wd)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ToolError(f"optimizer must be sgd, adam or adamw, got '{kind}'")
