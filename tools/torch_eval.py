#!/usr/bin/python3
"""Evaluates a scratchnet model file with PyTorch, on a data set's test split (t10k).

The file's architecture is rebuilt as the equivalent torch.nn.Sequential, its tensors are
loaded with load_state_dict(strict=True), and the model runs in eval mode on the test images,
preprocessed as the file says. Loss is the mean cross-entropy of the outputs taken as logits
and a prediction is the first largest output, as `scratchnet eval` computes them.

    /usr/bin/python3 tools/torch_eval.py runs/basic/model.safetensors --dataset data/mnist
    /usr/bin/python3 tools/torch_eval.py model.safetensors --dataset mnist --json \
        --predictions torch-predictions.txt
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import (ToolError, class_names_for, evaluate, load_model_file,  # noqa: E402
                          load_split, preprocess, resolve_dataset)

import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a scratchnet model file (.safetensors)")
    ap.add_argument("--dataset", required=True,
                    help="directory of IDX files, or a name (mnist, fashion-mnist) under "
                    "--data-dir")
    ap.add_argument("--data-dir", default="data", help="where named data sets live (data)")
    ap.add_argument("--batch", type=int, default=1000, help="evaluation batch size (1000)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    ap.add_argument("--predictions", metavar="FILE",
                    help="write one predicted class index per line, in test-set order")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.batch < 1 or args.threads < 1:
        ap.error("--batch and --threads must be at least 1")
    torch.set_num_threads(args.threads)

    model, info = load_model_file(args.model)
    directory, names = resolve_dataset(args.dataset, args.data_dir)
    images, labels = load_split(directory, "t10k")
    shape = [1, *images.shape[1:]]
    if shape != list(model.input_shape):
        raise ToolError(f"{directory}: images of shape {tuple(shape)} do not fit a model built "
                        f"for {tuple(model.input_shape)}")
    if len(model.output_shape) != 1:
        raise ToolError(f"{args.model}: the model's output {tuple(model.output_shape)} is not "
                        "(N, classes)")
    classes = model.output_shape[0]
    data_classes = len(class_names_for(labels, names))
    if data_classes > classes:
        raise ToolError(f"{directory}: the data set has {data_classes} classes but the model "
                        f"predicts only {classes}")

    start = time.perf_counter()
    x = preprocess(images, info["preprocess"])
    loss, predicted, confusion = evaluate(model, x, labels, args.batch)
    seconds = time.perf_counter() - start
    count = labels.shape[0]
    correct = int(confusion.diagonal().sum())
    accuracy = correct / count

    if args.predictions:
        with open(args.predictions, "w") as f:
            f.writelines(f"{int(p)}\n" for p in predicted)

    class_names = info["class_names"] or [str(c) for c in range(classes)]
    if args.json:
        per_class = []
        for c in range(classes):
            total = int(confusion[c].sum())
            per_class.append({"class": class_names[c],
                              "accuracy": int(confusion[c, c]) / total if total else None})
        print(json.dumps({"model": args.model, "dataset": directory, "count": count,
                          "loss": loss, "accuracy": accuracy, "correct": correct,
                          "per_class": per_class, "confusion": confusion.tolist(),
                          "seconds": seconds, "torch": torch.__version__,
                          "threads": args.threads}))
    else:
        print(f"{args.model} on {directory} (t10k, {count} images), PyTorch {torch.__version__}")
        print(f"accuracy {100 * accuracy:.2f} %  ({correct} / {count} correct)  "
              f"loss {loss:.4f}  {seconds:.2f} s")
    if args.predictions:
        print(f"predictions written to {args.predictions}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except ToolError as e:
        print(f"torch_eval: error: {e}", file=sys.stderr)
        sys.exit(1)
