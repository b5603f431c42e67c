"""Golden files for the reference models (basic, bn) and the optimisers.

Read by tests/golden/test_model_parity.cpp and tests/golden/test_optim_parity.cpp; the file
layout is described in tests/golden/README-models.md.

Model weights are not stored: they are drawn from goldens_common.Rng (a bit-exact port of
scratchnet::Rng) in state_dict order, so the C++ test regenerates them from the seed. A few
leading values of every weight are stored to prove the two generators agree. Inputs and
weights are float32 values; torch then computes in float64 from exactly those values and the
results are rounded to float32, so the references carry no float32 rounding of their own.

The input batch is chosen (by trying input seeds in order) so that every ReLU and max-pool
decision has a margin far larger than float32 rounding: a decision that flipped between
torch and scratchnet would move a gradient by percents and hide real agreement.
"""
import copy
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from goldens_common import Rng, save_safetensors

BATCH = 8
STEPS = 5
SAMPLE_ABOVE = 4096  # tensors with more elements are stored as a sample plus sums
SAMPLE_STRIDE = 97  # the sample: flat indices 0, 97, 194, ... (97 is prime to every dim)
BN_WEIGHT_RANGE = (0.5, 1.5)
BN_BIAS_RANGE = (-0.5, 0.5)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# A ReLU or max-pool decision must have a margin of at least this many times the largest
# float32 rounding error torch makes in that activation (and never below MIN_MARGIN of the
# activation's largest magnitude).
MARGIN_FACTOR = 4.0
MIN_MARGIN = 1e-6
MAX_INPUT_TRIES = 200
REFERENCE = "torch {} in float64 from float32 inputs and weights, rounded to float32"

MODELS = {
    "basic": {
        "weight_seed": 101,
        "input_seed": 1000,  # the first seed tried
        "normalize": False,
        "optimizer": {"name": "adam", "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                      "weight_decay": 0.0},
    },
    "bn": {
        "weight_seed": 202,
        "input_seed": 2000,
        "normalize": True,
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "dampening": 0.0,
                      "weight_decay": 0.0, "nesterov": False},
    },
}


def make_model(name):
    if name == "basic":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "bn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(12544, 128), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Linear(128, 10))
    raise ValueError(f"unknown model {name}")


def init_weights(model, seed):
    """Draws every parameter, layer by layer in state_dict order, from one Rng stream:
    Conv2d/Linear weight and bias ~ U(-b, b) with b = 1/sqrt(fan_in) computed in float32,
    BatchNorm weight ~ U(BN_WEIGHT_RANGE), bias ~ U(BN_BIAS_RANGE)."""
    rng = Rng(seed)
    for layer in model:
        params = list(layer.named_parameters(recurse=False))
        if not params:
            continue
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            ranges = {"weight": BN_WEIGHT_RANGE, "bias": BN_BIAS_RANGE}
        else:
            bound = np.float32(1.0) / np.sqrt(np.float32(layer.weight[0].numel()))
            ranges = {"weight": (-bound, bound), "bias": (-bound, bound)}
        with torch.no_grad():
            for pname, p in params:
                p.copy_(rng.uniform_tensor(tuple(p.shape), *ranges[pname]))


def make_batch(seed, normalize):
    """Pixels ~ U(0, 1) in float32 (optionally normalised as the bn recipe does), labels from
    the same stream."""
    rng = Rng(seed)
    x = rng.uniform_tensor((BATCH, 1, 28, 28), 0.0, 1.0)
    if normalize:
        x = (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    labels = torch.tensor([rng.next_u64() % 10 for _ in range(BATCH)], dtype=torch.int64)
    return x.to(torch.float32), labels


def layer_inputs(model, x):
    """The input of every layer for one forward pass (no gradient)."""
    acts = []
    model = copy.deepcopy(model)  # training-mode BatchNorm would update the running stats
    with torch.no_grad():
        for layer in model:
            acts.append(x)
            x = layer(x)
    return acts


def decision_margins(model32, model64, x):
    """For each ReLU, the smallest margin of a decision that matters, relative to the
    activation's largest magnitude, and the threshold it must clear. A ReLU element matters
    when it reaches the loss: every element when no max-pool follows, else the winner of its
    pooling window, whose value must be clear of 0 and (when positive) of the runner-up."""
    a32 = layer_inputs(model32, x)
    a64 = layer_inputs(model64, x.double())
    result = []
    for i, layer in enumerate(model64):
        if not isinstance(layer, nn.ReLU):
            continue
        a = a64[i]
        scale = a.abs().max().item()
        err = (a32[i].double() - a).abs().max().item() / scale
        threshold = max(MIN_MARGIN, MARGIN_FACTOR * err)
        following = model64[i + 1] if i + 1 < len(model64) else None
        if isinstance(following, nn.MaxPool2d):
            k = following.kernel_size
            n, c, h, w = a.shape
            win = a[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k)
            win = win.permute(0, 1, 2, 4, 3, 5).reshape(-1, k * k).sort(dim=1, descending=True)
            top, second = win.values[:, 0], win.values[:, 1]
            gap = torch.where((top > 0) & (second > 0), top - second, torch.full_like(top, 1e30))
            margin = torch.minimum(top.abs(), gap).min().item()
        else:
            margin = a.abs().min().item()
        result.append((i, margin / scale, threshold))
    return result


def choose_batch(name, cfg, model32, model64):
    for seed in range(cfg["input_seed"], cfg["input_seed"] + MAX_INPUT_TRIES):
        x, labels = make_batch(seed, cfg["normalize"])
        margins = decision_margins(model32, model64, x)
        if all(m >= t for _, m, t in margins):
            return seed, x, labels, margins
    raise RuntimeError(f"{name}: no input seed with clear decisions in {MAX_INPUT_TRIES} tries")


def make_optimizer(params, o):
    if o["name"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                weight_decay=o["weight_decay"])
    return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                           weight_decay=o["weight_decay"], nesterov=o["nesterov"])


def store_large(tensors, key, t):
    """Full tensor when small, else a strided sample plus the full sum, sum of |x| and sum of
    squares (sums in float64, stored rounded to float32)."""
    flat = t.detach().double().reshape(-1)
    if flat.numel() <= SAMPLE_ABOVE:
        tensors[key] = t
        return
    tensors[key + ".sample"] = flat[::SAMPLE_STRIDE]
    tensors[key + ".sum"] = flat.sum().reshape(1)
    tensors[key + ".sumabs"] = flat.abs().sum().reshape(1)
    tensors[key + ".sumsq"] = (flat * flat).sum().reshape(1)


def analytically_zero(grads):
    """Gradients that are zero in exact arithmetic (a bias just before a BatchNorm, which
    subtracts the batch mean), as name -> the scale their rounding noise is measured against:
    the largest gradient of the same layer's weight."""
    zero = {}
    for name, g in grads.items():
        layer, kind = name.split(".")
        scale = grads[f"{layer}.weight"].abs().max().item()
        if kind == "bias" and g.abs().max().item() < 1e-9 * scale:
            zero[name] = scale
    return zero


def max_rel(a, b):
    """Largest |a - b| over the largest |b| (the measure the C++ tests use)."""
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def model_golden(name, out_dir):
    cfg = MODELS[name]
    initial = make_model(name)
    init_weights(initial, cfg["weight_seed"])
    model32 = copy.deepcopy(initial)
    model64 = copy.deepcopy(initial).double()
    seed, x, labels, margins = choose_batch(name, cfg, model32, model64)
    x64 = x.double()

    tensors = {"input": x, "labels": labels.double(), "logits": None, "loss": None}
    for pname, p in initial.named_parameters():
        tensors[f"init.{pname}.head"] = p.detach().reshape(-1)[:8]

    # One forward and backward in training mode (BatchNorm uses batch statistics).
    model64.train()
    logits = model64(x64)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors["logits"] = logits.detach()
    tensors["loss"] = loss.detach().reshape(1)
    for pname, p in model64.named_parameters():
        store_large(tensors, f"grad.{pname}", p.grad)

    # What the same step gives in float32 torch: how close torch comes to its own reference.
    model32.train()
    logits32 = model32(x)
    F.cross_entropy(logits32, labels).backward()
    grads64 = {pname: p.grad for pname, p in model64.named_parameters()}
    zero_grads = analytically_zero(grads64)
    torch32 = {"logits": max_rel(logits32.detach(), logits)}
    for pname, p in model32.named_parameters():
        if pname in zero_grads:
            torch32[pname] = p.grad.abs().max().item() / zero_grads[pname]
        else:
            torch32[pname] = max_rel(p.grad, grads64[pname])

    # STEPS optimiser steps from fresh weights on the same batch, then the logits in eval mode.
    trained = copy.deepcopy(initial).double()
    trained.train()
    opt = make_optimizer(trained.parameters(), cfg["optimizer"])
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        step_loss = F.cross_entropy(trained(x64), labels)
        step_loss.backward()
        opt.step()
        losses.append(step_loss.item())
    tensors["train.losses"] = torch.tensor(losses, dtype=torch.float64)
    for bname, b in trained.named_buffers():
        store_large(tensors, f"train.{bname}", b.double())
    trained.eval()
    with torch.no_grad():
        tensors["train.eval_logits"] = trained(x64)

    metadata = {
        "model": name,
        "weight_seed": str(cfg["weight_seed"]),
        "input_seed": str(seed),
        "batch": str(BATCH),
        "steps": str(STEPS),
        "optimizer": json.dumps(cfg["optimizer"], sort_keys=True),
        "init": json.dumps({"conv_linear": "U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
                            "batchnorm_weight": BN_WEIGHT_RANGE,
                            "batchnorm_bias": BN_BIAS_RANGE}),
        "zero_grads": json.dumps(zero_grads, sort_keys=True),
        "sample_above": str(SAMPLE_ABOVE),
        "sample_stride": str(SAMPLE_STRIDE),
        "reference": REFERENCE.format(torch.__version__),
        "torch_float32_max_rel_err": json.dumps(torch32, sort_keys=True),
        "decision_margins": json.dumps([[i, m, t] for i, m, t in margins]),
    }
    f32 = {k: v.detach().to(torch.float32) for k, v in tensors.items()}
    path = os.path.join(out_dir, f"model_{name}.safetensors")
    save_safetensors(path, f32, metadata)
    worst = max(torch32.values())
    print(f"{os.path.normpath(path)}: input seed {seed}, loss {loss.item():.6f}, losses "
          f"{', '.join(f'{v:.6f}' for v in losses)}; torch float32 worst rel err {worst:.2e}")
    return path


# Optimiser goldens: two parameters and a fixed sequence of gradients.
OPTIM_SEED = 303
OPTIM_SHAPES = {"p0": (3, 4), "p1": (4,)}
OPTIM_CASES = {
    "sgd_plain": {"name": "sgd", "lr": 0.1},
    "sgd_momentum": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "sgd_dampening": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.1},
    "sgd_nesterov": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    "sgd_weight_decay": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.05},
    "adam": {"name": "adam", "lr": 0.01},
    "adam_weight_decay": {"name": "adam", "lr": 0.01, "weight_decay": 0.1},
    "adamw": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
    # p0 in the first group with the optimiser's options, p1 in a second group that sets
    # its own learning rate (and, for SGD, weight decay).
    "sgd_groups": {"name": "sgd", "lr": 0.1, "momentum": 0.9,
                   "groups": [{}, {"lr": 0.01, "weight_decay": 0.05}]},
    "adam_groups": {"name": "adam", "lr": 0.01, "groups": [{}, {"lr": 0.001}]},
    # Recipe::l1: loss + l1 * p0.abs().sum() (p0 plays a weight, p1 a bias the penalty leaves
    # alone); autograd adds l1 * sign(p0) to p0's gradient before each step.
    "sgd_l1": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "l1": 0.05},
    "adam_l1": {"name": "adam", "lr": 0.01, "l1": 0.01},
}
OPTIM_DEFAULTS = {
    "sgd": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
}


def full_options(case):
    o = dict(OPTIM_DEFAULTS[case["name"]])
    o.update(case)
    return o


def torch_optimizer(o, groups):
    kw = {"lr": o["lr"], "weight_decay": o["weight_decay"]}
    if o["name"] == "sgd":
        return torch.optim.SGD(groups, momentum=o["momentum"], dampening=o["dampening"],
                               nesterov=o["nesterov"], **kw)
    cls = torch.optim.Adam if o["name"] == "adam" else torch.optim.AdamW
    return cls(groups, betas=(o["beta1"], o["beta2"]), eps=o["eps"], **kw)


def optim_golden(out_dir):
    rng = Rng(OPTIM_SEED)
    init = {k: rng.uniform_tensor(s, -1.0, 1.0) for k, s in OPTIM_SHAPES.items()}
    grads = []
    for step in range(STEPS):
        g = {}
        for k, s in OPTIM_SHAPES.items():
            # Magnitudes from 1e-3 to 1 and one exact zero, so Adam's normalisation and
            # momentum's memory are both exercised.
            v = rng.uniform_tensor(s, -1.0, 1.0) * 10.0 ** rng.uniform_tensor(s, -3.0, 0.0)
            v.reshape(-1)[step % v.numel()] = 0.0
            g[k] = v.to(torch.float32)
        grads.append(g)

    tensors = {}
    for k in OPTIM_SHAPES:
        tensors[f"init.{k}"] = init[k]
        for step, g in enumerate(grads):
            tensors[f"grad.{step}.{k}"] = g[k]
    for case_name, case in OPTIM_CASES.items():
        o = full_options(case)
        params = {k: init[k].double().clone().requires_grad_(True) for k in OPTIM_SHAPES}
        if "groups" in o:
            groups = [dict(extra, params=[params[k]])
                      for extra, k in zip(o["groups"], OPTIM_SHAPES)]
        else:
            groups = [{"params": list(params.values())}]
        opt = torch_optimizer(o, groups)
        for step, g in enumerate(grads):
            for k, p in params.items():
                p.grad = g[k].double().clone()
            if "l1" in o:
                penalty = o["l1"] * params["p0"].abs().sum()
                penalty.backward()
                tensors[f"{case_name}.{step}.l1_penalty"] = penalty.detach().reshape(1)
            opt.step()
            for k, p in params.items():
                tensors[f"{case_name}.{step}.{k}"] = p.detach().clone()

    metadata = {
        "steps": str(STEPS),
        "seed": str(OPTIM_SEED),
        "cases": json.dumps({k: full_options(c) for k, c in OPTIM_CASES.items()}, sort_keys=True),
        "reference": REFERENCE.format(torch.__version__),
    }
    f32 = {k: v.detach().to(torch.float32) for k, v in tensors.items()}
    path = os.path.join(out_dir, "optim.safetensors")
    save_safetensors(path, f32, metadata)
    print(f"{os.path.normpath(path)}: {len(OPTIM_CASES)} optimiser cases, {STEPS} steps each")
    return path


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    paths = [model_golden(name, out_dir) for name in MODELS]
    paths.append(optim_golden(out_dir))
    return paths


if __name__ == "__main__":
    main(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden",
                      "models"))
