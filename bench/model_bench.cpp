// model_bench — times scratchnet on a reference model, one measurement per process.
//
// bench/compare.py runs it in alternation with bench/torch_bench.py (the same modes and JSON
// fields in PyTorch) and reports medians; see bench/README.md and docs/PERFORMANCE.md.
//
//   model_bench train   --model basic --steps 300     N timed steps after a warm-up
//   model_bench train   --model bn --epochs 1         whole epochs of the 60,000 images
//   model_bench infer   --model basic --batch 1000    eval-mode forward over the test set
//   model_bench latency --model basic --reps 1000     batch 1, median of single forwards
//   model_bench sgemm   --size 1024 --reps 5          gemm_parallel, best of reps
//
// Training is the Trainer's step (src/train/trainer.cpp): a BatchLoader over the in-memory
// training split with the preset recipe's shuffling and preprocessing, forward in training
// mode, softmax cross-entropy, zero_grad, backward, optimiser step. Every mode prints one JSON
// line on stdout with the numbers, the threads, gemm_isa() and the peak resident set size
// (getrusage ru_maxrss) of the process. Errors are one line on stderr and a non-zero exit.
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/data/dataset.h"
#include "scratchnet/data/loader.h"
#include "scratchnet/kernels/gemm.h"
#include "scratchnet/loss.h"
#include "scratchnet/model.h"
#include "scratchnet/parallel.h"
#include "scratchnet/presets.h"
#include "scratchnet/train/recipe.h"

namespace scratchnet {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string model = "basic";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string data = "data/mnist";
  int64_t steps = 300, epochs = 0, warmup = 20;  // train (epochs > 0 replaces steps)
  int64_t limit = 0;                             // train: the first `limit` images (0: all)
  int64_t batch = 1000, batches = 10;            // infer
  int64_t reps = 1000, latency_warmup = 50;      // latency
  int64_t size = 1024, sgemm_reps = 5;           // sgemm
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// The resident set size now (VmRSS in /proc/self/status), or -1 where that is not available.
double current_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "123 kB"
  return -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double percentile(std::vector<double> v, double p) {  // nearest rank
  std::sort(v.begin(), v.end());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// The fields every mode prints.
json header(const std::string& mode) {
  return json{{"framework", "scratchnet"},
              {"version", "0.1.0"},
              {"mode", mode},
              {"threads", num_threads()},
              {"isa", gemm_isa()}};
}

void print(json j) {
  j["peak_rss_mib"] = peak_rss_mib();
  fmt::print("{}\n", j.dump());
}

// One split of an MNIST-format directory: "train" or "t10k", raw or .gz.
Dataset load_split(const std::string& dir, const std::string& split) {
  namespace fs = std::filesystem;
  SN_CHECK(fs::is_directory(dir),
           "--data {}: not a directory (fetch MNIST with `bash scripts/fetch-data.sh mnist`)", dir);
  auto find = [&](const std::string& name) {
    for (const std::string& candidate : {name, name + ".gz"})
      if (fs::exists(fs::path(dir) / candidate)) return (fs::path(dir) / candidate).string();
    fail("--data {}: missing {} (or {}.gz); fetch MNIST with `bash scripts/fetch-data.sh mnist`",
         dir, name, name);
  };
  return load_idx_dataset(find(split + "-images-idx3-ubyte"), find(split + "-labels-idx1-ubyte"),
                          {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
}

json model_fields(const Flags& f, const Sequential& model) {
  return json{{"model", f.model}, {"flops_per_image", model.flops_per_sample()}};
}

void run_train(const Flags& f) {
  Dataset train = load_split(f.data, "train");
  if (f.limit > 0) {
    SN_CHECK(f.limit <= train.size(), "--limit {} exceeds the {} training images", f.limit,
             train.size());
    train = take_first(train, f.limit);
  }
  Sequential model = make_preset(f.model);
  Recipe recipe = preset_recipe(f.model);
  model.init(recipe.init, recipe.seed);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(recipe, model.params());
  BatchLoader loader(train, {.batch_size = recipe.batch_size,
                             .shuffle = true,
                             .seed = recipe.seed,
                             .preprocess = recipe.preprocess});
  Tensor d_logits;  // (B, 10)
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  auto next_batch = [&]() {  // the loader's batches, epoch after epoch
    const Batch* batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    return batch;
  };
  auto step = [&](const Batch& batch) {
    const Tensor& logits = model.forward(batch.images, Mode::kTrain);  // (B, 10)
    float loss = cross_entropy_loss(logits, batch.labels, &d_logits);
    optimizer->zero_grad();
    model.backward(d_logits, 0, /*input_grad=*/false);
    optimizer->step();
    return loss;
  };

  const double rss_before_mib = current_rss_mib();  // data loaded, model and optimiser built
  for (int64_t i = 0; i < f.warmup; ++i) step(*next_batch());
  double loss_sum = 0;
  int64_t images = 0, steps = 0;
  auto start = Clock::now();
  if (f.epochs > 0) {
    for (int64_t e = 0; e < f.epochs; ++e) {
      loader.start_epoch(++epoch);
      while (const Batch* batch = loader.next()) {
        loss_sum += step(*batch) * static_cast<double>(batch->labels.size());
        images += static_cast<int64_t>(batch->labels.size());
        ++steps;
      }
    }
  } else {
    for (; steps < f.steps; ++steps) {
      const Batch* batch = next_batch();
      loss_sum += step(*batch) * static_cast<double>(batch->labels.size());
      images += static_cast<int64_t>(batch->labels.size());
    }
  }
  double seconds = seconds_since(start);
  double mean_loss = loss_sum / static_cast<double>(images);
  SN_CHECK(std::isfinite(mean_loss), "training diverged: the mean loss of the timed steps is {}",
           mean_loss);
  double ips = static_cast<double>(images) / seconds;
  json j = header("train");
  j.update(model_fields(f, model));
  j.update(json{{"optimizer", recipe.optimizer},
                {"batch", recipe.batch_size},
                {"warmup_steps", f.warmup},
                {"steps", steps},
                {"epochs", f.epochs},
                {"images", images},
                {"seconds", seconds},
                {"images_per_second", ips},
                {"train_images", train.size()},
                {"seconds_per_epoch", static_cast<double>(train.size()) / ips},
                {"mean_loss", mean_loss},
                {"rss_before_train_mib", rss_before_mib}});
  print(j);
}

// Preprocessed test images in batches of `batch`, at most `count` of them (fewer when the
// test set runs out; callers cycle through them).
std::vector<Tensor> test_batches(const Flags& f, int64_t batch, int64_t count) {
  Dataset test = load_split(f.data, "t10k");
  Preprocess preprocess = preset_recipe(f.model).preprocess;
  count = std::min(count, test.size() / batch);
  SN_CHECK(count >= 1, "the test set's {} images do not fill one batch of {}", test.size(), batch);
  std::vector<Tensor> out(static_cast<size_t>(count));
  std::vector<int64_t> indices(static_cast<size_t>(batch));
  for (int64_t b = 0; b < count; ++b) {
    for (int64_t i = 0; i < batch; ++i) indices[static_cast<size_t>(i)] = b * batch + i;
    make_batch(out[static_cast<size_t>(b)], test, indices.data(), batch, preprocess);
  }
  return out;
}

void run_infer(const Flags& f) {
  std::vector<Tensor> batches = test_batches(f, f.batch, f.batches);  // each (B, 1, 28, 28)
  Sequential model = make_preset(f.model);
  model.forward(batches[0], Mode::kEval);  // warm-up: plans the buffers
  auto start = Clock::now();
  for (int64_t b = 0; b < f.batches; ++b)
    model.forward(batches[static_cast<size_t>(b) % batches.size()], Mode::kEval);
  double seconds = seconds_since(start);
  int64_t images = f.batch * f.batches;
  json j = header("infer");
  j.update(model_fields(f, model));
  j.update(json{{"batch", f.batch},
                {"batches", f.batches},
                {"images", images},
                {"seconds", seconds},
                {"images_per_second", static_cast<double>(images) / seconds}});
  print(j);
}

void run_latency(const Flags& f) {
  std::vector<Tensor> images = test_batches(f, 1, 100);  // each (1, 1, 28, 28)
  Sequential model = make_preset(f.model);
  for (int64_t i = 0; i < f.latency_warmup; ++i)
    model.forward(images[static_cast<size_t>(i) % images.size()], Mode::kEval);
  std::vector<double> ms(static_cast<size_t>(f.reps));
  for (int64_t i = 0; i < f.reps; ++i) {
    auto start = Clock::now();
    model.forward(images[static_cast<size_t>(i) % images.size()], Mode::kEval);
    ms[static_cast<size_t>(i)] = 1e3 * seconds_since(start);
  }
  json j = header("latency");
  j.update(model_fields(f, model));
  j.update(json{{"batch", 1},
                {"warmup", f.latency_warmup},
                {"reps", f.reps},
                {"median_ms", median(ms)},
                {"p10_ms", percentile(ms, 10)},
                {"p90_ms", percentile(ms, 90)},
                {"min_ms", *std::min_element(ms.begin(), ms.end())},
                {"images_per_second", 1e3 / median(ms)}});
  print(j);
}

void run_sgemm(const Flags& f) {
  const int64_t s = f.size;
  std::vector<float> a(static_cast<size_t>(s * s)), b(a.size()), c(a.size());  // (S, S) each
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i % 17) * 0.01f - 0.08f;
    b[i] = static_cast<float>(i % 13) * 0.02f - 0.12f;
  }
  GemmArgs g{.m = s,
             .n = s,
             .k = s,
             .a = a.data(),
             .lda = s,
             .b = b.data(),
             .ldb = s,
             .beta = 0,
             .c = c.data(),
             .ldc = s};
  gemm_parallel(g);  // warm-up
  std::vector<double> gflops;
  for (int64_t r = 0; r < f.sgemm_reps; ++r) {
    auto start = Clock::now();
    gemm_parallel(g);
    gflops.push_back(2.0 * static_cast<double>(s) * s * s / seconds_since(start) / 1e9);
  }
  json j = header("sgemm");
  j.update(json{{"kernel", "gemm_parallel"},
                {"size", s},
                {"reps", f.sgemm_reps},
                {"gflops", *std::max_element(gflops.begin(), gflops.end())},
                {"median_gflops", median(gflops)}});
  print(j);
}

CLI::App* add_mode(CLI::App& app, const char* name, const char* what, Flags& f) {
  CLI::App* cmd = app.add_subcommand(name, what);
  cmd->add_option("--threads", f.threads, "Threads for the kernels")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  return cmd;
}

void add_model_flags(CLI::App* cmd, Flags& f) {
  cmd->add_option("--model", f.model, "Reference model")
      ->capture_default_str()
      ->check(CLI::IsMember(preset_names()));
  cmd->add_option("--data", f.data, "Directory of the MNIST IDX files (raw or .gz)")
      ->capture_default_str();
}

}  // namespace
}  // namespace scratchnet

int main(int argc, char** argv) {
  using namespace scratchnet;
  Flags f;
  CLI::App app{
      "model_bench: times scratchnet on a reference model and prints one JSON line.\n"
      "bench/compare.py runs it side by side with bench/torch_bench.py."};
  app.require_subcommand(1);

  CLI::App* train = add_mode(app, "train", "Training steps (batch 64, the preset's recipe)", f);
  add_model_flags(train, f);
  CLI::Option* steps = train->add_option("--steps", f.steps, "Timed steps")
                           ->capture_default_str()
                           ->check(CLI::PositiveNumber);
  train->add_option("--epochs", f.epochs, "Timed whole epochs instead of --steps")
      ->check(CLI::PositiveNumber)
      ->excludes(steps);
  train->add_option("--warmup", f.warmup, "Untimed steps first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  train->add_option("--limit", f.limit, "Train on the first N images only (quick checks)")
      ->check(CLI::PositiveNumber);

  CLI::App* infer = add_mode(app, "infer", "Eval-mode forward passes over test batches", f);
  add_model_flags(infer, f);
  infer->add_option("--batch", f.batch, "Images per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  infer->add_option("--batches", f.batches, "Timed forward passes (cycling over the test set)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  CLI::App* latency = add_mode(app, "latency", "Single-image forward passes, median time", f);
  add_model_flags(latency, f);
  latency->add_option("--reps", f.reps, "Timed forward passes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  latency->add_option("--warmup", f.latency_warmup, "Untimed forward passes first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  CLI::App* sgemm = add_mode(app, "sgemm", "Square single-precision GEMM (gemm_parallel)", f);
  sgemm->add_option("--size", f.size, "Matrix size S (S x S times S x S)")
      ->capture_default_str()
      ->check(CLI::Range(1, 16384));
  sgemm->add_option("--reps", f.sgemm_reps, "Timed multiplies (the best is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "model_bench: error: {} (see model_bench --help)\n", e.what());
    return 2;
  }
  try {
    set_num_threads(f.threads);
    if (train->parsed()) {
      run_train(f);
    } else if (infer->parsed()) {
      run_infer(f);
    } else if (latency->parsed()) {
      run_latency(f);
    } else {
      run_sgemm(f);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "model_bench: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
