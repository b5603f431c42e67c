#!/usr/bin/python3
"""Writes tests/golden/schedules/*.json: learning rates (and one-cycle momenta) from
torch.optim.lr_scheduler driving a real torch optimiser, for tests/train/test_schedule.cpp.

Run from the repository root with Debian's python3-torch (1.13), usually through
tools/make_goldens.py:
    /usr/bin/python3 tools/golden_schedules.py
One file per schedule kind, each a list of cases:
    name            the case
    options         the schedule as scratchnet's recipe JSON writes it (train/schedule.h)
    base_lr         the optimiser's lr before the scheduler is made (a Python float)
    epochs, steps_per_epoch   the run: epochs * steps_per_epoch ticks for per-step schedules
    lr              group['lr'] after construction (tick 0) and after each scheduler.step()
    momentum        one-cycle: the momentum (SGD) or betas[0] (Adam) at each tick
    metrics         plateau: the value given to step(metric) at ticks 1, 2, ...
    closed_form     where PyTorch has one: the lr from the closed form at the same ticks
                    (_get_closed_form_lr, or an explicit LambdaLR for cosine with warm-up)
Output is deterministic: the same torch version writes the same bytes.
"""
import json
import math
import os
import warnings

import torch
from torch.optim import lr_scheduler as S


def optimiser(kind, lr):
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3)
    if kind == "adam":
        return torch.optim.Adam([p], lr=lr)
    return torch.optim.SGD([p], lr=lr, momentum=0.9 if kind == "sgd_momentum" else 0.0)


def drive(opt, sched, ticks, metrics=None, closed=False, momentum=None):
    """Group 0's lr at tick 0 and after each of `ticks` steps (a real optimiser step first)."""
    group = opt.param_groups[0]
    out = {"lr": [group["lr"]]}
    if closed:
        out["closed_form"] = [sched._get_closed_form_lr()[0]]
    if momentum:
        out["momentum"] = [group[momentum] if momentum == "momentum" else group["betas"][0]]
    for t in range(ticks):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
        out["lr"].append(group["lr"])
        if closed:
            out["closed_form"].append(sched._get_closed_form_lr()[0])
        if momentum:
            out["momentum"].append(group[momentum] if momentum == "momentum" else
                                   group["betas"][0])
    return out


def case(name, options, base_lr, epochs, steps_per_epoch=1, **values):
    return dict(name=name, options=options, base_lr=base_lr, epochs=epochs,
                steps_per_epoch=steps_per_epoch, **values)


def step_cases():
    out = []
    for name, lr, size, gamma, ticks in [("s2_g0.5", 0.1, 2, 0.5, 12),
                                         ("s3_g0.1", 0.01, 3, 0.1, 12),
                                         ("s1_g0.9", 0.001, 1, 0.9, 40)]:
        opt = optimiser("sgd", lr)
        sched = S.StepLR(opt, step_size=size, gamma=gamma)
        out.append(case(name, {"kind": "step", "unit": "epoch", "step_size": size, "gamma": gamma},
                        lr, ticks, **drive(opt, sched, ticks, closed=True)))
    return out


def multistep_cases():
    out = []
    for name, lr, milestones, gamma, ticks in [
            ("m3_6", 0.1, [3, 6], 0.1, 10),
            ("m1_2_5_9_g0.5", 0.05, [1, 2, 5, 9], 0.5, 12),
            ("m2_4_6_8_10_g0.3", 0.007, [2, 4, 6, 8, 10], 0.3, 12)]:
        opt = optimiser("sgd", lr)
        sched = S.MultiStepLR(opt, milestones=milestones, gamma=gamma)
        out.append(case(name, {"kind": "multistep", "unit": "epoch", "milestones": milestones,
                               "gamma": gamma}, lr, ticks, **drive(opt, sched, ticks, closed=True)))
    return out


def exponential_cases():
    out = []
    for name, lr, gamma, ticks in [("g0.9", 0.1, 0.9, 30), ("g0.5", 0.001, 0.5, 10),
                                   ("g0.99", 0.05, 0.99, 100)]:
        opt = optimiser("sgd", lr)
        sched = S.ExponentialLR(opt, gamma=gamma)
        out.append(case(name, {"kind": "exponential", "unit": "epoch", "gamma": gamma}, lr, ticks,
                        **drive(opt, sched, ticks, closed=True)))
    return out


def cosine_lambda(base, warmup, start, eta_min, total):
    """The same schedule as an explicit formula (LambdaLR multiplies base_lr by it)."""
    def factor(t):
        if t < warmup:
            return start + (1 - start) * t / warmup
        return (eta_min + (base - eta_min) * (1 + math.cos(math.pi * (t - warmup) /
                                                           (total - warmup))) / 2) / base
    return factor


def cosine_cases():
    out = []
    for name, lr, warmup, start, eta_min, total in [("t10", 0.1, 0, None, 0.0, 10),
                                                    ("t20_w3", 0.01, 3, 1 / 3, 1e-5, 20),
                                                    ("t50_w5_s0.01", 0.001, 5, 0.01, 1e-6, 50),
                                                    ("t7_w1_s0.1", 0.05, 1, 0.1, 0.0, 7),
                                                    ("t12_w11", 0.2, 11, 0.5, 0.001, 12)]:
        opt = optimiser("sgd", lr)
        options = {"kind": "cosine", "unit": "epoch", "warmup": warmup, "min_lr": eta_min}
        if warmup == 0:
            sched = S.CosineAnnealingLR(opt, T_max=total, eta_min=eta_min)
        else:
            options["warmup_start_factor"] = start
            warm = S.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=warmup)
            cos = S.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)
            with warnings.catch_warnings():  # SequentialLR steps CosineAnnealingLR with step(0)
                warnings.simplefilter("ignore")
                sched = S.SequentialLR(opt, [warm, cos], milestones=[warmup])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = drive(opt, sched, total)
        lam_opt = optimiser("sgd", lr)
        lam = S.LambdaLR(lam_opt, cosine_lambda(lr, warmup, start or 1.0, eta_min, total))
        values["closed_form"] = drive(lam_opt, lam, total)["lr"]
        out.append(case(name, options, lr, total, **values))
    return out


def onecycle_cases():
    out = []
    for name, opt_kind, max_lr, epochs, spe, extra in [
            ("default_sgd", "sgd_momentum", 0.01, 4, 5, {}),
            ("linear_three_phase", "sgd_momentum", 0.1, 3, 10,
             dict(pct_start=0.25, anneal_strategy="linear", three_phase=True, div_factor=10.0,
                  final_div_factor=100.0)),
            ("adam_pct0.4", "adam", 0.003, 5, 10, dict(pct_start=0.4)),
            ("three_phase_cos", "sgd_momentum", 1.0, 1, 17, dict(three_phase=True)),
            ("short_linear", "sgd", 0.05, 2, 3,
             dict(anneal_strategy="linear", cycle_momentum=False, pct_start=0.5))]:
        opt = optimiser(opt_kind, 0.123)  # OneCycleLR ignores the optimiser's lr
        sched = S.OneCycleLR(opt, max_lr=max_lr, epochs=epochs, steps_per_epoch=spe, **extra)
        options = {"kind": "onecycle", "unit": "step", "max_lr": max_lr,
                   "pct_start": extra.get("pct_start", 0.3),
                   "anneal_strategy": extra.get("anneal_strategy", "cos"),
                   "div_factor": extra.get("div_factor", 25.0),
                   "final_div_factor": extra.get("final_div_factor", 1e4),
                   "three_phase": extra.get("three_phase", False)}
        momentum = None
        if extra.get("cycle_momentum", True):
            momentum = "betas" if opt_kind == "adam" else "momentum"
        values = drive(opt, sched, epochs * spe, momentum=momentum)
        out.append(case(name, options, 0.123, epochs, spe, **values))
    return out


def plateau_cases():
    out = []
    falling = [1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.5, 0.49999, 0.5, 0.6, 0.6, 0.6, 0.3, 0.3, 0.3,
               0.3, 0.3, 0.29, 0.28, 0.28, 0.28, 0.28]
    rising = [0.5, 0.6, 0.6, 0.605, 0.61, 0.7, 0.7, 0.7, 0.69, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9]
    for name, lr, metrics, kw in [
            ("min_rel_p2", 0.1, falling, dict(patience=2, factor=0.5)),
            ("min_abs_cooldown2", 0.01, falling,
             dict(patience=1, factor=0.1, threshold=0.01, threshold_mode="abs", cooldown=2,
                  min_lr=1e-4)),
            ("max_rel_p0_cooldown1", 0.05, rising,
             dict(mode="max", patience=0, factor=0.3, threshold=0.01, cooldown=1)),
            ("max_abs_min_lr", 0.2, rising,
             dict(mode="max", patience=1, factor=0.2, threshold=0.05, threshold_mode="abs",
                  min_lr=0.01)),
            ("eps_stops_small_cuts", 0.01, [1.0] * 16, dict(patience=0, factor=0.5, eps=1e-3))]:
        opt = optimiser("sgd", lr)
        sched = S.ReduceLROnPlateau(opt, **kw)
        options = {"kind": "plateau", "unit": "epoch", "monitor": "test_loss",
                   "mode": kw.get("mode", "min"), "factor": kw["factor"],
                   "patience": kw["patience"], "threshold": kw.get("threshold", 1e-4),
                   "threshold_mode": kw.get("threshold_mode", "rel"),
                   "cooldown": kw.get("cooldown", 0), "min_lr": kw.get("min_lr", 0.0),
                   "eps": kw.get("eps", 1e-8)}
        if options["mode"] == "max":
            options["monitor"] = "test_accuracy"
        values = drive(opt, sched, len(metrics), metrics=metrics)
        out.append(case(name, options, lr, len(metrics), metrics=metrics, **values))
    return out


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    kinds = {"step": step_cases, "multistep": multistep_cases, "exponential": exponential_cases,
             "cosine": cosine_cases, "onecycle": onecycle_cases, "plateau": plateau_cases}
    for kind, make in kinds.items():
        doc = {"torch": torch.__version__.split("+")[0], "kind": kind, "cases": make()}
        with open(os.path.join(out_dir, kind + ".json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
    main(os.path.join(root, "schedules"))
    print(f"schedule goldens written under {os.path.normpath(root)}/schedules")
