#!/usr/bin/python3
"""PyTorch twin of bench/model_bench: times a reference model in PyTorch, one measurement per
process, and prints one JSON line with the same fields as model_bench.

    /usr/bin/python3 bench/torch_bench.py train   --model basic --steps 300 --threads 2
    /usr/bin/python3 bench/torch_bench.py train   --model bn --epochs 1
    /usr/bin/python3 bench/torch_bench.py infer   --model basic --batch 1000 --batches 10
    /usr/bin/python3 bench/torch_bench.py latency --model basic --reps 1000
    /usr/bin/python3 bench/torch_bench.py sgemm   --size 1024 --reps 5

The models, recipes and preprocessing come from tools/torch_models.py (the exact torch
equivalents of scratchnet's presets). Training keeps the uint8 training images in memory,
shuffles them every epoch, preprocesses each batch of 64 as scratchnet's BatchLoader does,
and runs forward, F.cross_entropy, zero_grad(set_to_none=True), backward, optimiser step.
Inference runs under torch.inference_mode() in eval mode. `sgemm` times torch.mm (which goes
through the libblas.so.3 that torch loaded: "blas" in the JSON) and oneDNN's matrix multiply
(torch._C._nn.mkldnn_linear, what PyTorch's convolutions use), and reports both.

OMP_WAIT_POLICY defaults to PASSIVE here (set before torch loads libgomp): with OpenMP's
default spin-waiting, 2 threads run slower than 1 on a shared 2-core machine. The thread count
is applied with torch.set_num_threads and torch.set_num_interop_threads.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede `import torch`
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_models import (PRESET_RECIPES, PRESET_SPECS, ToolError, load_split,  # noqa: E402
                          make_optimizer, make_preset, preprocess)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402



def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def loaded_library(stem):
    """Real path of the shared library named stem* that this process mapped, or None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if os.path.basename(path).startswith(stem):
                    return os.path.realpath(path)
    except OSError:
        pass
    return None


def current_rss_mib():
    """VmRSS from /proc/self/status, or -1 where that is not available."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0  # "123 kB"
    except OSError:
        pass
    return -1


def cpu_capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def header(mode, args):
    return {"framework": "pytorch", "version": torch.__version__, "mode": mode,
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "isa": cpu_capability(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "blas": loaded_library("libblas.so") or loaded_library("libopenblas")}


def emit(record):
    record["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(record, sort_keys=True), flush=True)


def flops_per_image(model, shape):
    """Forward FLOPs of one image with scratchnet's convention (Layer::flops in
    include/scratchnet/layer.h): a multiply-add is 2, plus one per output for a bias; ReLU one
    per element; MaxPool2d K*K-1 comparisons per output; batch norm 2 per element."""
    total = 0
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        for m in model:
            y = m(x)
            if isinstance(m, nn.Conv2d):
                kk = m.kernel_size[0] * m.kernel_size[1]
                total += 2 * y.numel() * m.in_channels * kk
                total += y.numel() if m.bias is not None else 0
            elif isinstance(m, nn.Linear):
                total += 2 * m.in_features * m.out_features
                total += m.out_features if m.bias is not None else 0
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                total += 2 * y.numel()
            elif isinstance(m, nn.ReLU):
                total += x.numel()
            elif isinstance(m, nn.MaxPool2d):
                total += y.numel() * (m.kernel_size * m.kernel_size - 1)
            elif not isinstance(m, nn.Flatten):
                raise ToolError(f"no FLOP count for {type(m).__name__}")
            x = y
    return total


def model_fields(args, model):
    return {"model": args.model,
            "flops_per_image": flops_per_image(model, PRESET_SPECS[args.model]["input"])}


def run_train(args):
    recipe = PRESET_RECIPES[args.model]
    images, labels = load_split(args.data, "train")  # uint8 (N, 28, 28), int64 (N)
    if args.limit:
        if args.limit > images.shape[0]:
            raise ToolError(f"--limit {args.limit} exceeds the {images.shape[0]} training "
                            "images")
        images, labels = images[:args.limit].clone(), labels[:args.limit].clone()
    n, batch = images.shape[0], recipe["batch_size"]
    torch.manual_seed(recipe["seed"])
    model = make_preset(args.model)
    fields = model_fields(args, model)
    model.train()
    optimizer = make_optimizer(recipe, model.parameters())
    generator = torch.Generator().manual_seed(recipe["seed"])

    def batches():  # shuffled batches of the in-memory set, epoch after epoch
        while True:
            order = torch.randperm(n, generator=generator)
            for first in range(0, n, batch):
                idx = order[first:first + batch]
                yield preprocess(images[idx], recipe["preprocess"]), labels[idx]

    def step(x, y):
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    rss_before = current_rss_mib()  # data loaded, model and optimiser built
    stream = batches()
    for _ in range(args.warmup):
        step(*next(stream))
    loss_sum, seen, steps = 0.0, 0, 0
    start = time.perf_counter()
    if args.epochs:
        # Whole epochs from a fresh permutation, as model_bench starts a new loader epoch.
        for _ in range(args.epochs):
            order = torch.randperm(n, generator=generator)
            for first in range(0, n, batch):
                idx = order[first:first + batch]
                x, y = preprocess(images[idx], recipe["preprocess"]), labels[idx]
                loss_sum += step(x, y) * y.shape[0]
                seen += y.shape[0]
                steps += 1
    else:
        for steps in range(1, args.steps + 1):
            x, y = next(stream)
            loss_sum += step(x, y) * y.shape[0]
            seen += y.shape[0]
    seconds = time.perf_counter() - start
    mean_loss = loss_sum / seen
    if not mean_loss == mean_loss or mean_loss in (float("inf"), float("-inf")):
        raise ToolError(f"training diverged: the mean loss of the timed steps is {mean_loss}")
    ips = seen / seconds
    record = header("train", args)
    record.update(fields)
    record.update({"optimizer": recipe["optimizer"], "batch": batch, "warmup_steps": args.warmup,
                   "steps": steps, "epochs": args.epochs, "images": seen, "seconds": seconds,
                   "images_per_second": ips, "train_images": n, "seconds_per_epoch": n / ips,
                   "mean_loss": mean_loss, "rss_before_train_mib": rss_before})
    emit(record)


def test_batches(args, batch, count):
    """Preprocessed test images in up to `count` batches of `batch` (callers cycle)."""
    images, _ = load_split(args.data, "t10k")
    count = min(count, images.shape[0] // batch)
    if count < 1:
        raise ToolError(f"the test set's {images.shape[0]} images do not fill one batch "
                        f"of {batch}")
    p = PRESET_RECIPES[args.model]["preprocess"]
    return [preprocess(images[b * batch:(b + 1) * batch], p) for b in range(count)]


def run_infer(args):
    batches = test_batches(args, args.batch, args.batches)  # each (B, 1, 28, 28)
    model = make_preset(args.model).eval()
    with torch.inference_mode():
        model(batches[0])  # warm-up
        start = time.perf_counter()
        for b in range(args.batches):
            model(batches[b % len(batches)])
        seconds = time.perf_counter() - start
    images = args.batch * args.batches
    record = header("infer", args)
    record.update(model_fields(args, model))
    record.update({"batch": args.batch, "batches": args.batches, "images": images,
                   "seconds": seconds, "images_per_second": images / seconds})
    emit(record)


def percentile(values, p):  # nearest rank, as model_bench
    v = sorted(values)
    rank = -(-p * len(v) // 100)
    return v[min(max(int(rank), 1), len(v)) - 1]


def run_latency(args):
    images = test_batches(args, 1, 100)  # each (1, 1, 28, 28)
    model = make_preset(args.model).eval()
    ms = []
    with torch.inference_mode():
        for i in range(args.warmup):
            model(images[i % len(images)])
        for i in range(args.reps):
            x = images[i % len(images)]
            start = time.perf_counter()
            model(x)
            ms.append(1e3 * (time.perf_counter() - start))
    median = statistics.median(ms)
    record = header("latency", args)
    record.update(model_fields(args, model))
    record.update({"batch": 1, "warmup": args.warmup, "reps": args.reps, "median_ms": median,
                   "p10_ms": percentile(ms, 10), "p90_ms": percentile(ms, 90),
                   "min_ms": min(ms), "images_per_second": 1e3 / median})
    emit(record)


def best_gflops(fn, size, reps):
    fn()  # warm-up
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        rates.append(2.0 * size ** 3 / (time.perf_counter() - start) / 1e9)
    return max(rates), statistics.median(rates)


def run_sgemm(args):
    s = args.size
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(s, s, generator=g), torch.randn(s, s, generator=g)  # (S, S) each
    c = torch.empty(s, s)
    record = header("sgemm", args)
    best, median = best_gflops(lambda: torch.mm(a, b, out=c), s, args.reps)
    record.update({"kernel": "torch.mm", "size": s, "reps": args.reps, "gflops": best,
                   "median_gflops": median})
    if torch.backends.mkldnn.is_available():
        am, bm = a.to_mkldnn(), b.to_mkldnn()  # mkldnn_linear computes am @ bm^T
        best, median = best_gflops(lambda: torch._C._nn.mkldnn_linear(am, bm, None), s, args.reps)
        record.update({"onednn_gflops": best, "onednn_median_gflops": median})
    emit(record)


def positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def non_negative(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{text}'") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {v}")
    return v


class Parser(argparse.ArgumentParser):
    """Bad flags are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv):
    parser = Parser(
        description="Times a reference model in PyTorch and prints one JSON line (the PyTorch "
                    "side of bench/compare.py; the same modes and fields as model_bench).")
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")

    def mode(name, text, with_model=True):
        p = modes.add_parser(name, help=text, description=text)
        p.add_argument("--threads", type=positive, default=os.cpu_count() or 1,
                       help="threads for torch (default: every core)")
        if with_model:
            p.add_argument("--model", choices=sorted(PRESET_SPECS), default="basic",
                           help="reference model (default: basic)")
            p.add_argument("--data", default="data/mnist",
                           help="directory of the MNIST IDX files (default: data/mnist)")
        return p

    p = mode("train", "training steps (batch 64, the preset's recipe)")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--steps", type=positive, default=300, help="timed steps (default 300)")
    amount.add_argument("--epochs", type=positive, default=0,
                        help="timed whole epochs instead of --steps")
    p.add_argument("--warmup", type=non_negative, default=20,
                   help="untimed steps first (default 20)")
    p.add_argument("--limit", type=positive, default=0,
                   help="train on the first N images only (quick checks)")
    p = mode("infer", "eval-mode forward passes over test batches")
    p.add_argument("--batch", type=positive, default=1000, help="images per pass (default 1000)")
    p.add_argument("--batches", type=positive, default=10,
                   help="timed passes, cycling over the test set (default 10)")
    p = mode("latency", "single-image forward passes, median time")
    p.add_argument("--reps", type=positive, default=1000, help="timed passes (default 1000)")
    p.add_argument("--warmup", type=non_negative, default=50,
                   help="untimed passes first (default 50)")
    p = mode("sgemm", "square single-precision matrix multiply", with_model=False)
    p.add_argument("--size", type=positive, default=1024, help="matrix size S (default 1024)")
    p.add_argument("--reps", type=positive, default=5,
                   help="timed multiplies, the best is reported (default 5)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    try:
        if args.mode != "sgemm" and not os.path.isdir(args.data):
            raise ToolError(f"--data {args.data}: not a directory (fetch MNIST with "
                            "`bash scripts/fetch-data.sh mnist`)")
        {"train": run_train, "infer": run_infer, "latency": run_latency,
         "sgemm": run_sgemm}[args.mode](args)
    except ToolError as e:
        print(f"torch_bench.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
