#!/usr/bin/python3
"""Checks a model file written by `scratchnet prune --out` against PyTorch's own pruning.

The source model is pruned with torch.nn.utils.prune (l1_unstructured on every Conv2d and
Linear weight for scope "layer", global_unstructured with L1Unstructured for "global") at the
sparsity and scope recorded in the pruned file's metrics. Every layer's zeros must sit exactly
where PyTorch's mask is 0, and, when the file was not fine-tuned, every kept weight and every
other tensor must equal the source's. Exit status 1 on any difference.

    /usr/bin/python3 tools/torch_prune_check.py runs/basic/model.safetensors \
        pruned/model-s90.safetensors
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ToolError, load_model_file  # noqa: E402

import torch  # noqa: E402
import torch.nn.utils.prune as prune  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="the model file that was pruned")
    ap.add_argument("pruned", help="a file written by scratchnet prune --out")
    args = ap.parse_args()

    source, _ = load_model_file(args.source)
    pruned, info = load_model_file(args.pruned)
    try:
        metrics = json.loads(info["metrics"] or "{}")
        sparsity, scope = float(metrics["sparsity"]), metrics["scope"]
        tuned = int(metrics["finetune_epochs"]) > 0
    except (KeyError, ValueError, TypeError):
        raise ToolError(f"{args.pruned}: its metrics do not record a sparsity, scope and "
                        "fine-tuning epochs: not written by scratchnet prune") from None
    modules = [m for m in source if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    if scope == "global":
        prune.global_unstructured([(m, "weight") for m in modules],
                                  pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for m in modules:
            prune.l1_unstructured(m, "weight", amount=sparsity)

    failures = 0
    theirs = dict(source.named_buffers())
    mine = dict(pruned.named_parameters())
    mine.update(pruned.named_buffers())
    for i, m in enumerate(source):
        if m in modules:
            mask = theirs[f"{i}.weight_mask"] == 0
            zeros = mine[f"{i}.weight"] == 0
            differ = int((mask != zeros).sum())
            print(f"{i}.weight: PyTorch prunes {int(mask.sum())} of {mask.numel()}, "
                  f"the file has {int(zeros.sum())} zeros, {differ} positions differ")
            failures += differ > 0
        if tuned:
            continue
        for name, t in list(m.named_parameters()) + list(m.named_buffers()):
            if name.endswith("_mask"):
                continue
            key = f"{i}.{name.removesuffix('_orig')}"
            want = getattr(m, name.removesuffix("_orig"))
            if not torch.equal(mine[key], want):
                print(f"{key}: differs from the pruned source")
                failures += 1
    print(f"{args.pruned}: {'matches' if failures == 0 else 'DIFFERS FROM'} PyTorch's "
          f"{scope} pruning to {sparsity}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    try:
        main()
    except ToolError as e:
        print(f"torch_prune_check: error: {e}", file=sys.stderr)
        sys.exit(1)
