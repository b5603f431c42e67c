#!/usr/bin/python3
"""Trains a reference model (basic or bn) with PyTorch, using its preset's recipe, for several
seeds, and reports the final test accuracy's mean and spread: the accuracy scratchnet must
reach with the same recipe.

Per seed: torch.manual_seed(seed), then the model with PyTorch's default initialisation; the
training set is shuffled every epoch by a torch.Generator seeded with the seed; the recipe's
optimiser, batch size and preprocessing; the test split is evaluated after every epoch.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/torch_train.py --model basic \
        --dataset data/mnist --epochs 5 --seeds 1,2,3 --threads 2 --out runs/torch-basic
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import (PRESET_RECIPES, ToolError, class_names_for, evaluate,  # noqa: E402
                          load_split, make_optimizer, make_preset, preprocess, resolve_dataset,
                          write_safetensors)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def parse_seeds(text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, "
                                         f"got '{text}'") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"need at least one seed >= 0, got '{text}'")
    return seeds


def train_one(name, recipe, data, seed, epochs, log):
    """Trains one seed; returns (model, history: list of per-epoch metric dicts)."""
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(seed)
    model = make_preset(name)
    optimizer = make_optimizer(recipe, model.parameters())
    generator = torch.Generator().manual_seed(seed)
    n, batch = train_x.shape[0], recipe["batch_size"]
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        loss_sum, correct = 0.0, 0
        for first in range(0, n, batch):
            idx = order[first:first + batch]
            x, y = train_x[idx], train_y[idx]
            out = model(x)
            loss = F.cross_entropy(out, y, label_smoothing=recipe["label_smoothing"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not math.isfinite(value):
                raise ToolError(f"seed {seed}: training diverged: the loss is {value} at "
                                f"epoch {epoch}, step {first // batch + 1}")
            loss_sum += value * y.shape[0]
            correct += int((out.argmax(dim=1) == y).sum())
        seconds = time.perf_counter() - start
        test_loss, predicted, _ = evaluate(model, test_x, test_y, 1000)
        m = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
             "test_loss": test_loss,
             "test_accuracy": int((predicted == test_y).sum()) / test_y.shape[0],
             "seconds": seconds, "images_per_second": n / seconds}
        history.append(m)
        log(f"seed {seed}  epoch {epoch}/{epochs}  "
            f"train loss {m['train_loss']:.4f} acc {100 * m['train_accuracy']:.2f} %  "
            f"test loss {m['test_loss']:.4f} acc {100 * m['test_accuracy']:.2f} %  "
            f"{seconds:.1f} s ({m['images_per_second']:.0f} img/s)")
    return model, history


def spread(values):
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, choices=sorted(PRESET_RECIPES),
                    help="reference model")
    ap.add_argument("--dataset", required=True,
                    help="directory of IDX files, or a name (mnist, fashion-mnist) under "
                    "--data-dir")
    ap.add_argument("--data-dir", default="data", help="where named data sets live (data)")
    ap.add_argument("--epochs", type=int, help="epochs (default: the recipe's, 5 for basic, "
                    "10 for bn)")
    ap.add_argument("--seeds", type=parse_seeds, default=[1],
                    help="comma-separated seeds, one training run each (1)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    ap.add_argument("--limit-train", type=int, metavar="N",
                    help="train on the first N training images only (quick runs)")
    ap.add_argument("--out", metavar="DIR",
                    help="save each seed's final model as DIR/<model>-seed<S>.safetensors")
    ap.add_argument("--json", action="store_true",
                    help="print a JSON summary on stdout (progress goes to stderr)")
    args = ap.parse_args()
    recipe = dict(PRESET_RECIPES[args.model])
    epochs = recipe["epochs"] if args.epochs is None else args.epochs
    if epochs < 1 or args.threads < 1 or (args.limit_train is not None and args.limit_train < 1):
        ap.error("--epochs, --threads and --limit-train must be at least 1")

    out = sys.stderr if args.json else sys.stdout

    def log(text):
        print(text, file=out, flush=True)

    torch.set_num_threads(args.threads)
    if args.threads > 1 and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        print(f"note: OMP_WAIT_POLICY=PASSIVE is not set; with {args.threads} threads PyTorch's "
              "spinning OpenMP threads may run slower than 1 thread on a shared machine. "
              "Run as: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/torch_train.py ...",
              file=sys.stderr, flush=True)

    directory, names = resolve_dataset(args.dataset, args.data_dir)
    train_images, train_y = load_split(directory, "train")
    test_images, test_y = load_split(directory, "t10k")
    class_names = class_names_for(torch.cat([train_y, test_y]), names)
    if len(class_names) > 10:
        raise ToolError(f"{directory}: {len(class_names)} classes; the reference models "
                        "predict 10")
    if list(train_images.shape[1:]) != [28, 28] or list(test_images.shape[1:]) != [28, 28]:
        raise ToolError(f"{directory}: the reference models need 28x28 images, got "
                        f"{tuple(train_images.shape[1:])}")
    if args.limit_train is not None:
        train_images, train_y = train_images[:args.limit_train], train_y[:args.limit_train]
    pre = recipe["preprocess"]
    data = (preprocess(train_images, pre), train_y, preprocess(test_images, pre), test_y)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    log(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}); model {args.model}; "
        f"{recipe['optimizer']} lr {recipe['lr']:g}"
        + (f" momentum {recipe['momentum']:g}" if recipe["optimizer"] == "sgd" else "")
        + f", batch {recipe['batch_size']}, {epochs} epochs; "
        f"{directory}: {train_y.shape[0]} training, {test_y.shape[0]} test images")

    runs = []
    for seed in args.seeds:
        model, history = train_one(args.model, recipe, data, seed, epochs, log)
        run = {"seed": seed, "history": history, "final": history[-1]}
        if args.out:
            path = os.path.join(args.out, f"{args.model}-seed{seed}.safetensors")
            final = history[-1]
            metrics = {key: final[key] for key in
                       ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")}
            metrics["train_images"] = int(train_y.shape[0])
            write_safetensors(path, model, pre, class_names,
                              recipe=dict(recipe, seed=seed, epochs=epochs), metrics=metrics,
                              origin=f"trained by tools/torch_train.py with PyTorch "
                                     f"{torch.__version__}")
            run["file"] = path
            log(f"seed {seed}: model written to {path}")
        runs.append(run)

    accuracies = [r["final"]["test_accuracy"] for r in runs]
    acc = spread(accuracies)
    seconds = [m["seconds"] for r in runs for m in r["history"]]
    log("")
    log(f"{args.model}, {epochs} epochs, {len(runs)} seed(s): final test accuracy")
    log(f"{'seed':>6}  {'test acc %':>10}  {'test loss':>9}  {'s/epoch (median)':>16}")
    for r in runs:
        median = statistics.median(m["seconds"] for m in r["history"])
        log(f"{r['seed']:>6}  {100 * r['final']['test_accuracy']:>10.2f}  "
            f"{r['final']['test_loss']:>9.4f}  {median:>16.1f}")
    std = "-" if acc["std"] is None else f"{100 * acc['std']:.3f}"
    log(f"{'mean':>6}  {100 * acc['mean']:>10.2f}   min {100 * acc['min']:.2f}  "
        f"max {100 * acc['max']:.2f}  std {std}")

    if args.json:
        print(json.dumps({
            "model": args.model, "dataset": directory, "epochs": epochs,
            "threads": args.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "torch": torch.__version__, "train_images": int(train_y.shape[0]),
            "test_images": int(test_y.shape[0]), "recipe": dict(recipe, epochs=epochs),
            "seeds": args.seeds, "runs": runs, "test_accuracy": acc,
            "seconds_per_epoch_median": statistics.median(seconds)}))


if __name__ == "__main__":
    try:
        main()
    except ToolError as e:
        print(f"torch_train: error: {e}", file=sys.stderr)
        sys.exit(1)
