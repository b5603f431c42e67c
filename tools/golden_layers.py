"""Golden files for every layer and loss, read by tests/golden/test_layer_parity.cpp.

One safetensors file per case, named <kind>_<case>.safetensors (kind in snake case, as its header). Each file
holds float32 tensors:
    input, d_output, output, d_input       the layer's input, a random upstream gradient,
                                           the forward result and the input gradient
    weight, bias, d_weight, d_bias         parameters (random, not default init) and their
                                           gradients, where the layer has them
    running_mean, running_var,             BatchNorm buffers loaded before the step, and
    num_batches_tracked, <buffer>.after    their values after the forward pass
    labels / target                        losses: class indices (as floats) / MSE target
and __metadata__ with kind (the C++ class or loss function), case, mode ("train"/"eval"),
options (JSON with the C++ option field names) and how the values were computed.

Inputs and parameters are drawn in float32; torch then computes in float64 from exactly those
values and the results are rounded to float32, so references carry no float32 rounding of
their own. Losses have no d_output: d_input is the gradient of the (mean) loss itself.
"""
import json
import os
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from goldens_common import save_safetensors

SEED = 20240611
REFERENCE = "torch {} in float64 from float32 inputs, rounded to float32"


class CaseWriter:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.files = []

    def gen(self, file_stem):
        """A generator seeded from the fixed seed and the case's name: adding or reordering
        cases leaves the others' values unchanged."""
        return torch.Generator().manual_seed(SEED + zlib.crc32(file_stem.encode()))

    def write(self, file_stem, kind, case, mode, options, tensors):
        metadata = {
            "kind": kind,
            "case": case,
            "mode": mode,
            "options": json.dumps(options, sort_keys=True),
            "reference": REFERENCE.format(torch.__version__),
        }
        path = os.path.join(self.out_dir, file_stem + ".safetensors")
        f32 = {k: v.detach().to(torch.float32) for k, v in tensors.items()}
        save_safetensors(path, f32, metadata)
        self.files.append(path)


def randn(g, *shape, scale=1.0):
    """float32 N(0, scale^2) values (the stored precision), returned as float64."""
    return (torch.randn(*shape, generator=g, dtype=torch.float32) * scale).double()


FILE_PREFIX = {
    "Conv2d": "conv2d", "MaxPool2d": "max_pool2d", "AvgPool2d": "avg_pool2d", "ReLU": "relu",
    "LeakyReLU": "leaky_relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Flatten": "flatten",
    "Softmax": "softmax", "LogSoftmax": "log_softmax", "Dropout": "dropout", "Linear": "linear",
    "BatchNorm2d": "batch_norm2d", "BatchNorm1d": "batch_norm1d",
}


def run_layer(w, kind, case, module, options, in_shape, mode="train", scale=1.0, shift=0.0,
              buffers=None):
    """Runs `module` (already built in float64) on a random input and writes the case."""
    stem = f"{FILE_PREFIX[kind]}_{case}"
    g = w.gen(stem)
    tensors = {}
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(randn(g, *p.shape, scale=0.5) + (1.0 if name == "weight" and
                                                     kind.startswith("BatchNorm") else 0.0))
            tensors[name] = p.clone()
        for name, b in module.named_buffers():
            if buffers is not None and name in buffers:
                b.copy_(buffers[name])
            tensors[name] = b.clone().double()
    x = (randn(g, *in_shape, scale=scale) + shift).requires_grad_()
    module.train(mode == "train")
    out = module(x)
    d_out = randn(g, *out.shape)
    out.backward(d_out)
    tensors.update(input=x, output=out, d_output=d_out, d_input=x.grad)
    for name, p in module.named_parameters():
        tensors["d_" + name] = p.grad
    if mode == "train":
        for name, b in module.named_buffers():
            tensors[name + ".after"] = b.clone().double()
    w.write(stem, kind, case, mode, options, tensors)


def conv2d(w):
    cases = [
        # name, N, C, OC, H, W, K, stride, padding, bias
        ("basic", 2, 1, 3, 6, 6, 3, 1, 0, True),
        ("stride2_pad1", 2, 3, 4, 7, 5, 3, 2, 1, True),
        ("nobias_nonsquare", 3, 2, 2, 5, 8, 2, 1, 0, False),
        ("k1", 1, 4, 3, 3, 4, 1, 1, 0, True),
        ("k5_stride2_pad2", 2, 2, 3, 9, 8, 5, 2, 2, True),
        ("stride2_dropped_edge", 2, 3, 2, 8, 7, 3, 2, 0, False),
        ("stride3_pad1_odd", 3, 2, 5, 11, 7, 4, 3, 1, True),
    ]
    for name, n, c, oc, h, wd, k, s, p, bias in cases:
        opts = {"in_channels": c, "out_channels": oc, "kernel": k, "stride": s, "padding": p,
                "bias": bias}
        m = nn.Conv2d(c, oc, k, stride=s, padding=p, bias=bias).double()
        run_layer(w, "Conv2d", name, m, opts, (n, c, h, wd))


def pooling(w):
    max_cases = [
        # name, shape, options (stride omitted = kernel)
        ("k2", (2, 3, 6, 6), {"kernel": 2}),
        ("k2_odd_nonsquare", (3, 2, 7, 5), {"kernel": 2}),
        ("k3_stride2_overlap", (2, 2, 7, 9), {"kernel": 3, "stride": 2}),
        ("k3_stride2_pad1", (2, 3, 6, 5), {"kernel": 3, "stride": 2, "padding": 1}),
        ("k2_stride1_pad1", (1, 2, 4, 5), {"kernel": 2, "stride": 1, "padding": 1}),
        ("k3_stride3", (2, 1, 10, 8), {"kernel": 3, "stride": 3}),
    ]
    for name, shape, opts in max_cases:
        k, s, p = opts["kernel"], opts.get("stride", 0) or opts["kernel"], opts.get("padding", 0)
        run_layer(w, "MaxPool2d", name, nn.MaxPool2d(k, s, p), opts, shape)
    avg_cases = [
        ("k2", (2, 3, 6, 6), {"kernel": 2}),
        ("k2_odd_nonsquare", (3, 2, 7, 5), {"kernel": 2}),
        ("k3_stride2_overlap", (2, 2, 7, 9), {"kernel": 3, "stride": 2}),
        ("k3_stride2_pad1", (2, 3, 6, 5), {"kernel": 3, "stride": 2, "padding": 1}),
        ("k2_stride1_pad1", (1, 2, 4, 5), {"kernel": 2, "stride": 1, "padding": 1}),
        ("k5_stride2_pad2", (2, 2, 9, 6), {"kernel": 5, "stride": 2, "padding": 2}),
    ]
    for name, shape, opts in avg_cases:
        k, s, p = opts["kernel"], opts.get("stride", 0) or opts["kernel"], opts.get("padding", 0)
        m = nn.AvgPool2d(k, s, p, count_include_pad=True)
        run_layer(w, "AvgPool2d", name, m, opts, shape)


def activations(w):
    shapes = [("nchw", (2, 3, 4, 5)), ("nf", (5, 7))]
    for name, shape in shapes:
        run_layer(w, "ReLU", name, nn.ReLU(), {}, shape)
        run_layer(w, "Tanh", name, nn.Tanh(), {}, shape, scale=2.0)
        run_layer(w, "Sigmoid", name, nn.Sigmoid(), {}, shape, scale=3.0)
        run_layer(w, "LeakyReLU", name, nn.LeakyReLU(), {}, shape)
    run_layer(w, "LeakyReLU", "slope0_2", nn.LeakyReLU(0.2), {"negative_slope": 0.2},
              (3, 2, 3, 3))
    run_layer(w, "Tanh", "saturated", nn.Tanh(), {}, (4, 6), scale=8.0)
    run_layer(w, "Sigmoid", "saturated", nn.Sigmoid(), {}, (4, 6), scale=12.0)
    run_layer(w, "Flatten", "nchw", nn.Flatten(), {}, (3, 2, 5, 3))
    run_layer(w, "Flatten", "nf", nn.Flatten(), {}, (4, 6))
    for kind, module in (("Softmax", nn.Softmax(dim=1)), ("LogSoftmax", nn.LogSoftmax(dim=1))):
        run_layer(w, kind, "n1", module, {}, (1, 10), scale=2.0)
        run_layer(w, kind, "batch", module, {}, (6, 10), scale=2.0)
        run_layer(w, kind, "two_classes", module, {}, (5, 2), scale=2.0)
        # Large logits overflow exp() in float32 unless the maximum is subtracted first.
        run_layer(w, kind, "large_logits", module, {}, (4, 7), scale=30.0, shift=100.0)
    # Dropout's mask comes from scratchnet's own Rng, so only the identity cases compare.
    run_layer(w, "Dropout", "eval", nn.Dropout(0.5), {"p": 0.5, "seed": 1}, (3, 2, 4, 4),
              mode="eval")
    run_layer(w, "Dropout", "eval_nf", nn.Dropout(0.3), {"p": 0.3, "seed": 7}, (5, 9), mode="eval")
    run_layer(w, "Dropout", "train_p0", nn.Dropout(0.0), {"p": 0.0, "seed": 3}, (4, 6))


def linear(w):
    cases = [("basic", 4, 7, 5, True), ("n1", 1, 6, 3, True), ("nobias", 3, 9, 4, False),
             ("to_one", 5, 8, 1, True), ("wide", 2, 33, 17, True)]
    for name, n, fin, fout, bias in cases:
        opts = {"in_features": fin, "out_features": fout, "bias": bias}
        run_layer(w, "Linear", name, nn.Linear(fin, fout, bias=bias).double(), opts, (n, fin))


def batch_norm(w):
    g = torch.Generator().manual_seed(SEED)

    def stats(c, batches):
        return {"running_mean": randn(g, c, scale=0.5),
                "running_var": torch.rand(c, generator=g, dtype=torch.float32).double() + 0.5,
                "num_batches_tracked": torch.tensor(batches)}

    for kind, module_type, shapes in (
            ("BatchNorm2d", nn.BatchNorm2d, [(4, 3, 5, 4), (2, 2, 3, 7), (3, 4, 2, 2)]),
            ("BatchNorm1d", nn.BatchNorm1d, [(8, 5), (2, 3), (16, 6)])):
        s_default, s_small, s_eval = shapes
        c = s_default[1]
        run_layer(w, kind, "train", module_type(c).double(), {"num_features": c}, s_default,
                  scale=2.0, shift=0.5)
        c = s_small[1]
        opts = {"num_features": c, "eps": 1e-3, "momentum": 0.3}
        run_layer(w, kind, "train_small_batch_stats_set",
                  module_type(c, eps=1e-3, momentum=0.3).double(), opts, s_small,
                  scale=1.5, shift=-0.3, buffers=stats(c, 5))
        c = s_eval[1]
        run_layer(w, kind, "eval", module_type(c).double(), {"num_features": c}, s_eval,
                  mode="eval", scale=1.5, shift=0.2, buffers=stats(c, 12))
        opts = {"num_features": c, "eps": 0.01}
        run_layer(w, kind, "eval_eps", module_type(c, eps=0.01).double(), opts, s_eval,
                  mode="eval", buffers=stats(c, 3))
    # BatchNorm1d also takes (N, F, L), normalising each feature over N * L values.
    run_layer(w, "BatchNorm1d", "train_nfl", nn.BatchNorm1d(4).double(), {"num_features": 4},
              (3, 4, 5), scale=2.0, shift=1.0, buffers=stats(4, 2))
    run_layer(w, "BatchNorm1d", "eval_nfl", nn.BatchNorm1d(4).double(), {"num_features": 4},
              (3, 4, 5), mode="eval", buffers=stats(4, 9))


def losses(w):
    for n, classes in ((1, 10), (4, 10), (7, 3), (5, 2)):
        for smoothing in (0.0, 0.1):
            case = f"n{n}_c{classes}_ls{smoothing:g}".replace(".", "_")
            stem = f"cross_entropy_loss_{case}"
            g = w.gen(stem)
            logits = randn(g, n, classes, scale=2.0).requires_grad_()
            labels = torch.randint(0, classes, (n,), generator=g)
            loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
            loss.backward()
            w.write(stem, "cross_entropy_loss", case, "train", {"label_smoothing": smoothing},
                    {"input": logits, "labels": labels.double(), "output": loss.reshape(1),
                     "d_input": logits.grad})
    for n, classes in ((1, 10), (6, 10), (3, 4)):
        case = f"n{n}_c{classes}"
        stem = f"nll_loss_{case}"
        g = w.gen(stem)
        log_probs = F.log_softmax(randn(g, n, classes, scale=2.0), dim=1)
        log_probs = log_probs.float().double().requires_grad_()
        labels = torch.randint(0, classes, (n,), generator=g)
        loss = F.nll_loss(log_probs, labels)
        loss.backward()
        w.write(stem, "nll_loss", case, "train", {},
                {"input": log_probs, "labels": labels.double(), "output": loss.reshape(1),
                 "d_input": log_probs.grad})
    for case, shape in (("nf", (4, 3)), ("nchw", (2, 3, 4, 5)), ("n1", (1, 10))):
        stem = f"mse_loss_{case}"
        g = w.gen(stem)
        pred = randn(g, *shape).requires_grad_()
        target = randn(g, *shape)
        loss = F.mse_loss(pred, target)
        loss.backward()
        w.write(stem, "mse_loss", case, "train", {},
                {"input": pred, "target": target, "output": loss.reshape(1),
                 "d_input": pred.grad})


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name.endswith(".safetensors"):
            os.remove(os.path.join(out_dir, name))
    torch.manual_seed(SEED)
    w = CaseWriter(out_dir)
    conv2d(w)
    pooling(w)
    activations(w)
    linear(w)
    batch_norm(w)
    losses(w)
    total = sum(os.path.getsize(p) for p in w.files)
    print(f"{len(w.files)} layer goldens, {total / 1024:.0f} KiB, in {out_dir}")
