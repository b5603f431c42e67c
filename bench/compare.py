#!/usr/bin/python3
"""Side-by-side speed of scratchnet and PyTorch on the reference models, one command.

    /usr/bin/python3 bench/compare.py --models basic,bn --threads 2 --repeats 3 --steps 300
    /usr/bin/python3 bench/compare.py --epochs 1 --markdown --json runs/compare.json

Every measurement is a fresh process: build/bench/model_bench MODE (scratchnet) or
bench/torch_bench.py MODE (PyTorch), printing one JSON line. The two frameworks alternate
measurement by measurement (the pair's order swaps every repeat, so neither always runs
first), with the same model, batch, thread count and MNIST data; the table shows the median
over --repeats and [min-max]. Modes:

  train    --steps N timed training steps (or --epochs E whole epochs) of batch 64 after
           --warmup steps; images/s, seconds per 60,000-image epoch, peak RSS of the process
  infer    eval-mode forward passes of batch 1000 over the test set; images/s
  latency  single-image forward passes after a warm-up; median milliseconds
  sgemm    a large square SGEMM in each framework (scratchnet's gemm_parallel; torch.mm and
           oneDNN's matrix multiply), once per repeat: the machine's measured FP32 peak is the
           best of them all

GFLOP/s = model FLOPs per image x images/s, with training counted as 3 x the forward FLOPs
(forward, plus backward for the input gradient and for the weight gradient); FLOPs per image
follow scratchnet's Layer::flops (a multiply-add counts 2). The floor of a measurement is its
FLOPs divided by the peak. OMP_WAIT_POLICY=PASSIVE is set for both (PyTorch's spinning OpenMP
threads otherwise distort a shared machine), and so is GLIBC_TUNABLES with glibc's mmap and trim
thresholds raised (MALLOC_TUNABLES): PyTorch allocates its activations afresh every pass, and
with glibc's defaults every large tensor is a new mmap whose pages fault in again, which cost
PyTorch up to 6x on a virtual machine with slow page faults (what jemalloc or tcmalloc would
also avoid; --default-malloc turns it off). With --torch-blas pointing at an OpenBLAS that
does not know the CPU (0.3.21 takes a 2023 Xeon for a 2004 Prescott and runs SSE3 kernels at a
fifth of the peak), PyTorch gets OPENBLAS_CORETYPE set to the newest kernels the CPU can run
(openblas_core); an OPENBLAS_CORETYPE set by the user is kept. Progress goes to stderr, the
table to stdout.
"""
import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODES = ("train", "infer", "latency")
FRAMEWORKS = ("scratchnet", "pytorch")
NAMES = {"scratchnet": "scratchnet", "pytorch": "PyTorch"}
ISA_FLAGS = ("fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "amx_tile")


class CompareError(Exception):
    """A one-line message for the user."""


def log(text):
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Running the measurements

def threads_for(mode, args):
    return args.latency_threads if mode == "latency" else args.threads


def command(framework, mode, model, args):
    if framework == "scratchnet":
        cmd = [args.model_bench, mode]
    else:
        cmd = [args.python, os.path.join(HERE, "torch_bench.py"), mode]
    cmd += ["--threads", str(threads_for(mode, args))]
    if mode != "sgemm":
        cmd += ["--model", model, "--data", args.data]
    if mode == "train":
        cmd += ["--epochs", str(args.epochs)] if args.epochs else ["--steps", str(args.steps)]
        cmd += ["--warmup", str(args.warmup)]
    elif mode == "infer":
        cmd += ["--batch", str(args.infer_batch), "--batches", str(args.infer_batches)]
    elif mode == "latency":
        cmd += ["--reps", str(args.latency_reps)]
    else:
        cmd += ["--size", str(args.sgemm_size), "--reps", str(args.sgemm_reps)]
    return cmd


# Freed memory stays in the process for reuse instead of going back to the kernel.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184"


def environment(framework, mode, args):
    env = dict(os.environ)
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    if not args.default_malloc:
        env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    if framework == "pytorch":
        env["OPENBLAS_NUM_THREADS"] = str(threads_for(mode, args))  # if torch loads OpenBLAS
        if args.torch_blas:
            env["LD_LIBRARY_PATH"] = ":".join(
                p for p in (args.torch_blas, env.get("LD_LIBRARY_PATH")) if p)
        if args.openblas_core:
            env["OPENBLAS_CORETYPE"] = args.openblas_core
    return env


# OpenBLAS's names for CPUs it treats as generic x86-64: what it falls back to for a CPU model
# it does not know, whatever vector units the CPU has.
OPENBLAS_GENERIC = ("Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                    "Coppermine", "Northwood", "Banias")


def openblas_core(args):
    """The OPENBLAS_CORETYPE for PyTorch's runs and a note on how it was chosen, or (None, note)
    to leave OpenBLAS's own choice."""
    if not args.torch_blas:
        return None, None
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"], "OPENBLAS_CORETYPE set by the user"
    env = environment("pytorch", "sgemm", args)
    env["OPENBLAS_VERBOSE"] = "2"  # OpenBLAS prints "Core: NAME" as it loads
    try:
        probe = subprocess.run([args.python, "-c", "import torch"], env=env, capture_output=True,
                               text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompareError(f"--python {args.python}: could not import torch ({e})")
    found = re.search(r"Core: (\w+)", probe.stdout + probe.stderr)
    if not found:
        return None, "OpenBLAS named no core (not a DYNAMIC_ARCH build?)"
    detected = found.group(1)
    if detected not in OPENBLAS_GENERIC:
        return None, f"OpenBLAS core {detected}, its own choice"
    flags = set(machine()["flags"])
    best = ("SkylakeX" if {"avx512f", "avx512bw", "avx512vl"} <= flags
            else "Haswell" if {"avx2", "fma"} <= flags else None)
    if not best:
        return None, f"OpenBLAS core {detected}, its own choice"
    return best, f"OpenBLAS core {best}, set because OpenBLAS took this CPU for {detected}"


def run_one(framework, mode, model, args):
    cmd = command(framework, mode, model, args)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, env=environment(framework, mode, args), capture_output=True,
                           text=True, check=False)
    except OSError as e:
        raise CompareError(f"cannot run {cmd[0]}: {e.strerror}") from None
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        why = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise CompareError(f"`{shlex.join(cmd)}` failed (exit {p.returncode}): {why}")
    record = json.loads(lines[-1])
    record["wall_seconds"] = time.perf_counter() - start
    record["load_average"] = load
    record["command"] = shlex.join(cmd)
    return record


def describe(record):
    mode = record["mode"]
    if mode == "train":
        return (f"{record['images_per_second']:.0f} img/s "
                f"({record['seconds_per_epoch']:.1f} s/epoch, {record['peak_rss_mib']:.0f} MiB)")
    if mode == "infer":
        return f"{record['images_per_second']:.0f} img/s"
    if mode == "latency":
        return f"{record['median_ms']:.3f} ms median"
    extra = f", oneDNN {record['onednn_gflops']:.1f}" if "onednn_gflops" in record else ""
    return f"{record['kernel']} {record['gflops']:.1f} GFLOP/s{extra}"


def schedule(args):
    """(repeat, model, mode, framework) in run order: pairs alternate, order swaps per repeat."""
    plan = []
    for r in range(args.repeats):
        order = FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]
        for model in args.models:
            for mode in MODES:
                plan += [(r, model, mode, f) for f in order]
        plan += [(r, None, "sgemm", f) for f in order]
    return plan


def run_all(args):
    plan = schedule(args)
    runs = []
    for i, (r, model, mode, framework) in enumerate(plan, 1):
        what = f"{model} {mode}" if model else mode
        log(f"[{i}/{len(plan)}] repeat {r + 1}/{args.repeats}  {what:<13} {NAMES[framework]} ...")
        record = run_one(framework, mode, model or "", args)
        record["repeat"] = r + 1
        runs.append(record)
        log(f"    {describe(record)}  ({record['wall_seconds']:.1f} s)")
    return runs


# ---------------------------------------------------------------------------------------------
# Summary

def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def pick(runs, framework, mode, model=None):
    return [r for r in runs if r["framework"] == framework and r["mode"] == mode
            and (model is None or r["model"] == model)]


def summarize(runs, args):
    gemm = {}
    for framework in FRAMEWORKS:
        for r in pick(runs, framework, "sgemm"):
            for key, name in (("gflops", r["kernel"]), ("onednn_gflops", "oneDNN matmul")):
                if key in r:
                    gemm.setdefault(name, []).append(r[key])
    gemm = {name: spread(v) for name, v in gemm.items()}
    peak_name = max(gemm, key=lambda n: gemm[n]["max"])
    peak = gemm[peak_name]["max"]  # GFLOP/s
    models = {}
    for model in args.models:
        m = {}
        for framework in FRAMEWORKS:
            f = {}
            for mode in MODES:
                rs = pick(runs, framework, mode, model)
                key = "median_ms" if mode == "latency" else "images_per_second"
                f[mode] = spread([r[key] for r in rs])
                if mode == "train":
                    f["train_rss_mib"] = spread([r["peak_rss_mib"] for r in rs])
                    f["train_images"] = rs[0]["train_images"]
            m[framework] = f
        flops = {fw: pick(runs, fw, "train", model)[0]["flops_per_image"] for fw in FRAMEWORKS}
        if abs(flops["scratchnet"] - flops["pytorch"]) > 1e-3 * flops["scratchnet"]:
            log(f"compare.py: warning: {model}: FLOPs per image differ: scratchnet "
                f"{flops['scratchnet']}, torch_bench {flops['pytorch']}")
        m["flops_per_image"] = flops["scratchnet"]
        models[model] = m
    return {"peak_gflops": peak, "peak_kernel": peak_name, "gemm": gemm, "models": models}


def fmt_num(x):
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def cell(median, lo, hi, repeats, unit=""):
    text = fmt_num(median) + unit
    return text if repeats == 1 else f"{text} [{fmt_num(lo)}–{fmt_num(hi)}]"


def table_rows(summary, args):
    """Rows of (model, measure, scratchnet, PyTorch, ratio) for the comparison table."""
    rows, peak, n = [], summary["peak_gflops"], args.repeats
    for model, m in summary["models"].items():
        sn, pt, fpi = m["scratchnet"], m["pytorch"], m["flops_per_image"]
        images = sn["train_images"]

        def both(fn):
            return fn(sn), fn(pt)

        def speed_ratio(mode):
            a, b = sn[mode]["median"], pt[mode]["median"]
            return b / a if mode == "latency" else a / b

        rows.append((model, "train: s/epoch", *both(
            lambda f: cell(images / f["train"]["median"], images / f["train"]["max"],
                           images / f["train"]["min"], n)),
            f"{speed_ratio('train'):.2f}x"))
        rows.append((model, "train: images/s", *both(
            lambda f: cell(f["train"]["median"], f["train"]["min"], f["train"]["max"], n)), ""))
        rows.append((model, "train: GFLOP/s (% of peak)", *both(
            lambda f: f"{3 * fpi * f['train']['median'] / 1e9:.1f} "
                      f"({100 * 3 * fpi * f['train']['median'] / 1e9 / peak:.1f} %)"), ""))
        rows.append((model, "train: peak RSS, MiB", *both(
            lambda f: cell(f["train_rss_mib"]["median"], f["train_rss_mib"]["min"],
                           f["train_rss_mib"]["max"], n)),
            f"{sn['train_rss_mib']['median'] / pt['train_rss_mib']['median']:.2f}x mem"))
        rows.append((model, f"infer b{args.infer_batch}: images/s", *both(
            lambda f: cell(f["infer"]["median"], f["infer"]["min"], f["infer"]["max"], n)),
            f"{speed_ratio('infer'):.2f}x"))
        rows.append((model, f"infer b{args.infer_batch}: GFLOP/s (% of peak)", *both(
            lambda f: f"{fpi * f['infer']['median'] / 1e9:.1f} "
                      f"({100 * fpi * f['infer']['median'] / 1e9 / peak:.1f} %)"), ""))
        rows.append((model, f"latency b1 ({args.latency_threads} thr): median ms", *both(
            lambda f: cell(f["latency"]["median"], f["latency"]["min"], f["latency"]["max"], n)),
            f"{speed_ratio('latency'):.2f}x"))
    return rows


def floor_rows(summary):
    """(model, MFLOP/image, epoch floor, scratchnet epoch, PyTorch epoch, 10k-image inference
    floor, latency floor) — floors in seconds at the measured peak."""
    peak = summary["peak_gflops"] * 1e9
    rows = []
    for model, m in summary["models"].items():
        fpi, images = m["flops_per_image"], m["scratchnet"]["train_images"]
        floor = 3 * fpi * images / peak

        def epoch(fw):
            s = images / m[fw]["train"]["median"]
            return f"{s:.1f} s ({s / floor:.0f}x)"

        rows.append((model, f"{fpi / 1e6:.2f}", f"{floor:.2f} s", epoch("scratchnet"),
                     epoch("pytorch"), f"{10000 * fpi / peak:.3f} s", f"{fpi / peak * 1e6:.0f} µs"))
    return rows


def machine():
    info = {"cpu": "unknown", "cpus": os.cpu_count(), "flags": []}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    info["cpu"] = value.strip()
                elif key.strip() == "flags":
                    have = set(value.split())
                    info["flags"] = [x for x in ISA_FLAGS if x in have]
                    break
    except OSError:
        pass
    return info


def render(rows, header, markdown):
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
             for r in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def report(summary, runs, args, invocation):
    sn = pick(runs, "scratchnet", "sgemm")[0]
    pt = pick(runs, "pytorch", "sgemm")[0]
    mach = machine()
    loads = [r["load_average"] for r in runs]
    amount = (f"{args.epochs} epoch(s)" if args.epochs
              else f"{args.steps} steps, scaled to a 60,000-image epoch")
    item = "- " if args.markdown else ""
    out = []
    out.append(f"{item}scratchnet {sn['version']} vs PyTorch {pt['version']}: {args.threads} "
               f"threads, median of {args.repeats} run(s)"
               + (" [min–max]" if args.repeats > 1 else ""))
    out.append(f"{item}machine: {mach['cpu']}, {mach['cpus']} CPUs, {' '.join(mach['flags'])}; "
               f"load average (1 min) before each run {min(loads):.1f}–{max(loads):.1f}")
    out.append(f"{item}scratchnet kernels: {sn['isa']}; PyTorch: ATen {pt['isa']}, "
               f"BLAS {pt.get('blas')}"
               + (f"; {args.openblas_note}" if args.openblas_note else "")
               + f", OMP_WAIT_POLICY={pt.get('omp_wait_policy')}, "
               f"malloc {'glibc defaults' if args.default_malloc else 'thresholds raised'}")
    out.append(f"{item}training: batch 64, {amount}, after {args.warmup} warm-up steps")
    out.append(f"{item}command: `{invocation}`" if args.markdown else f"command: {invocation}")
    out.append("")
    header = ["model", "measure", "scratchnet", "PyTorch", "ratio"]
    out.append(render(table_rows(summary, args), header, args.markdown))
    out.append("")
    out.append("ratio: scratchnet speed / PyTorch speed (images/s; for latency PyTorch's time / "
               "scratchnet's), > 1 = scratchnet faster; for memory scratchnet MiB / PyTorch MiB.")
    out.append("")
    gemm = ", ".join(f"{name} {fmt_num(s['max'])}" for name, s in summary["gemm"].items())
    out.append(f"FP32 peak: {summary['peak_gflops']:.1f} GFLOP/s ({summary['peak_kernel']}, best "
               f"{args.sgemm_size}^3 SGEMM); measured: {gemm} GFLOP/s")
    out.append("")
    header = ["model", "fwd MFLOP/image", "epoch floor", "scratchnet epoch", "PyTorch epoch",
              "10k-image inference floor", "latency floor"]
    out.append(render(floor_rows(summary), header, args.markdown))
    out.append("")
    out.append("FLOPs: forward per image by scratchnet's Layer::flops (multiply-add = 2); "
               "training = 3 x forward; floor = FLOPs / peak; (Nx) = time / floor.")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Command line

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
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv):
    p = Parser(description=__doc__.split("\n\n")[0],
               epilog="See bench/README.md and docs/PERFORMANCE.md.")
    p.add_argument("--models", default="basic,bn",
                   help="reference models, comma-separated (default: basic,bn)")
    p.add_argument("--threads", type=positive, default=2, help="threads for both (default 2)")
    p.add_argument("--latency-threads", type=positive,
                   help="threads for both in the single-image latency runs (default: --threads)")
    p.add_argument("--repeats", type=positive, default=3,
                   help="runs of every measurement per framework (default 3)")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--steps", type=positive, default=300,
                        help="timed training steps per run (default 300)")
    amount.add_argument("--epochs", type=positive, default=0,
                        help="timed whole training epochs per run, instead of --steps")
    p.add_argument("--warmup", type=non_negative, default=20,
                   help="untimed training steps first (default 20)")
    p.add_argument("--data", default="data/mnist",
                   help="directory of the MNIST IDX files (default: data/mnist; fetch with "
                        "`bash scripts/fetch-data.sh mnist`)")
    p.add_argument("--json", metavar="FILE", help="also write every run and the summary here")
    p.add_argument("--markdown", action="store_true",
                   help="print the tables as markdown (for docs/PERFORMANCE.md)")
    p.add_argument("--model-bench", default=os.path.join(ROOT, "build", "bench", "model_bench"),
                   help="the model_bench executable (default: build/bench/model_bench)")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the Python with torch for torch_bench.py (default: /usr/bin/python3)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc thresholds as they are (slower PyTorch: see above)")
    p.add_argument("--torch-blas", metavar="DIR",
                   help="a directory holding a libblas.so.3 for PyTorch to load instead of the "
                        "system's (put on LD_LIBRARY_PATH of the PyTorch runs only)")
    p.add_argument("--infer-batch", type=positive, default=1000,
                   help="batch size of the inference runs (default 1000)")
    p.add_argument("--infer-batches", type=positive, default=10,
                   help="timed batches per inference run (default 10: the test set)")
    p.add_argument("--latency-reps", type=positive, default=1000,
                   help="timed single-image passes per latency run (default 1000)")
    p.add_argument("--sgemm-size", type=positive, default=1024,
                   help="size S of the S x S SGEMM that measures the peak (default 1024)")
    p.add_argument("--sgemm-reps", type=positive, default=5,
                   help="multiplies per SGEMM run, the best counts (default 5)")
    args = p.parse_args(argv)
    if args.latency_threads is None:
        args.latency_threads = args.threads
    args.openblas_core = args.openblas_note = None  # chosen in main(), by openblas_core()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in args.models:
        if m not in ("basic", "bn"):
            p.error(f"--models: unknown model '{m}' (known: basic, bn)")
    if not args.models:
        p.error("--models: need at least one model")
    if len(set(args.models)) != len(args.models):
        p.error("--models: a model is listed twice")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if not (os.path.isfile(args.model_bench) and os.access(args.model_bench, os.X_OK)):
            raise CompareError(f"{args.model_bench}: no model_bench executable (build it with "
                               "`cmake --build build --target model_bench`, or pass "
                               "--model-bench PATH)")
        if not os.path.isdir(args.data):
            raise CompareError(f"--data {args.data}: not a directory (fetch MNIST with "
                               "`bash scripts/fetch-data.sh mnist`)")
        if args.torch_blas and not os.path.isfile(os.path.join(args.torch_blas, "libblas.so.3")):
            raise CompareError(f"--torch-blas {args.torch_blas}: no libblas.so.3 there")
        args.data = os.path.abspath(args.data)
        args.model_bench = os.path.abspath(args.model_bench)
        invocation = "/usr/bin/python3 bench/compare.py " + shlex.join(argv)
        started = time.time()
        args.openblas_core, args.openblas_note = openblas_core(args)
        if args.openblas_note:
            log(f"PyTorch's BLAS: {args.openblas_note}")
        runs = run_all(args)
        summary = summarize(runs, args)
        text = report(summary, runs, args, invocation.strip())
        print(text, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"command": invocation.strip(), "started": started,
                           "config": {k: v for k, v in vars(args).items()},
                           "machine": machine(), "summary": summary, "runs": runs}, f, indent=1)
            log(f"wrote {args.json}")
    except CompareError as e:
        print(f"compare.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compare.py: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
