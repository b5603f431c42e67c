// scratchnet quantize — int8 post-training quantisation of a model file, with its accuracy
// and speed before and after.
#include "scratchnet/quantize.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/data/loader.h"
#include "scratchnet/kernels/int8_gemm.h"
#include "scratchnet/parallel.h"
#include "scratchnet/train/evaluate.h"

namespace scratchnet::cli {

namespace {

struct QuantizeFlags {
  CommonFlags common;
  std::string model, out, dataset;
  int64_t calibration = 1000;
  uint64_t seed = 0;
  int64_t latency_images = 200;
  int64_t repeats = 3;
  int64_t limit = 0;
  bool json = false;
};

// Accuracy, throughput over the test set at batch 1000 and the median one-image latency.
struct Measured {
  EvalResult eval;
  double images_per_s = 0, latency_ms = 0;
};

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Both models side by side, turn about, so a busy moment of the machine hits both alike:
// `repeats` passes over the test set (the median rate) and `latency` single images (the
// median time).
std::pair<Measured, Measured> measure(Sequential& a, Sequential& b, const Dataset& test,
                                      const Preprocess& pre, int64_t repeats, int64_t latency) {
  using clock = std::chrono::steady_clock;
  Sequential* models[2] = {&a, &b};
  Measured m[2];
  std::vector<double> rates[2], times[2];
  const Dataset warm = take_first(test, std::min<int64_t>(1000, test.size()));
  for (Sequential* model : models) evaluate(*model, warm, pre, 1000);
  for (int64_t r = 0; r < repeats; ++r)
    for (int k = 0; k < 2; ++k) {
      const auto t0 = clock::now();
      m[k].eval = evaluate(*models[k], test, pre, 1000);
      rates[k].push_back(test.size() / std::chrono::duration<double>(clock::now() - t0).count());
    }
  Tensor x;
  for (int64_t i = 0; i < std::min(latency, test.size()); ++i) {
    make_batch(x, test, &i, 1, pre);
    for (int k = 0; k < 2; ++k) {
      const auto t0 = clock::now();
      models[k]->forward(x, Mode::kEval);
      times[k].push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    }
  }
  for (int k = 0; k < 2; ++k) {
    m[k].images_per_s = median(rates[k]);
    m[k].latency_ms = times[k].empty() ? 0 : median(times[k]);
  }
  return {m[0], m[1]};
}

// MODEL-int8.safetensors beside the model file.
std::string default_out(const std::string& model_file) {
  const std::filesystem::path p(model_file);
  return (p.parent_path() / (p.stem().string() + "-int8.safetensors")).string();
}

void run_quantize(const QuantizeFlags& f) {
  apply_threads(f.common);
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights, "'{}' has no trained weights: quantize needs a model file", f.model);
  LoadedModel& m = src.loaded;
  for (size_t i = 0; i < m.model.size(); ++i)
    SN_CHECK(m.model.layer(i).kind().find("Int8") == std::string::npos,
             "{} is already an int8 model (layer {} is {})", f.model, i, m.model.layer(i).kind());
  const std::string dataset = f.dataset.empty() ? m.info.dataset : f.dataset;
  SN_CHECK(!dataset.empty(), "{} does not record its data set: give --dataset", f.model);
  const std::string out = f.out.empty() ? default_out(src.file) : f.out;
  check_output_file("--out", out);
  DatasetSplits data = load_dataset(dataset, f.common.data_dir);
  Dataset test = f.limit > 0 ? take_first(data.test, std::min(f.limit, data.test.size()))
                             : std::move(data.test);

  if (!f.json)
    fmt::print("calibrating on {} training images of {} ...\n",
               std::min(f.calibration, data.train.size()), dataset);
  Sequential q = quantize_int8(m.model, data.train, m.info.preprocess,
                               {.calibration_images = f.calibration, .seed = f.seed});
  if (!f.json) fmt::print("measuring on {} test images ...\n", test.size());
  auto [before, after] = measure(m.model, q, test, m.info.preprocess, f.repeats, f.latency_images);
  int64_t same = 0;
  for (size_t i = 0; i < before.eval.predicted.size(); ++i)
    same += before.eval.predicted[i] == after.eval.predicted[i];

  ModelInfo info = m.info;
  info.origin = fmt::format("{} (int8, calibrated on {} training images)", f.model,
                            std::min(f.calibration, data.train.size()));
  info.metrics = nlohmann::json{{"test_accuracy", after.eval.accuracy},
                                {"float_test_accuracy", before.eval.accuracy}}
                     .dump();
  save_model(out, q, info);

  const double drop = 100 * (before.eval.accuracy - after.eval.accuracy);
  const auto bytes = [](const std::string& path) {
    return static_cast<double>(std::filesystem::file_size(path));
  };
  if (f.json) {
    fmt::print("{}\n", nlohmann::json{{"model", f.model},
                                      {"out", out},
                                      {"isa", int8_gemm_isa()},
                                      {"threads", num_threads()},
                                      {"test_images", test.size()},
                                      {"float_accuracy", before.eval.accuracy},
                                      {"int8_accuracy", after.eval.accuracy},
                                      {"same_predictions", same},
                                      {"float_images_per_s", before.images_per_s},
                                      {"int8_images_per_s", after.images_per_s},
                                      {"float_latency_ms", before.latency_ms},
                                      {"int8_latency_ms", after.latency_ms},
                                      {"float_bytes", bytes(src.file)},
                                      {"int8_bytes", bytes(out)}}
                           .dump());
    return;
  }
  fmt::print("\n{:<22}{:>12}{:>12}\n", "", "float32", "int8");
  fmt::print("{:<22}{:>12}{:>12}   {:+.2f} points\n", "test accuracy",
             percent(before.eval.accuracy), percent(after.eval.accuracy), -drop);
  fmt::print("{:<22}{:>24}   of {} predictions the same\n", "agreement", same, test.size());
  fmt::print("{:<22}{:>12.0f}{:>12.0f}   {:.2f}x (images/s, batch 1000, median of {})\n",
             "throughput", before.images_per_s, after.images_per_s,
             after.images_per_s / before.images_per_s, f.repeats);
  fmt::print("{:<22}{:>12.3f}{:>12.3f}   {:.2f}x (ms, median of {})\n", "one-image latency",
             before.latency_ms, after.latency_ms, before.latency_ms / after.latency_ms,
             std::min(f.latency_images, test.size()));
  fmt::print("{:<22}{:>12.2f}{:>12.2f}   MB\n", "file size", bytes(src.file) / 1e6,
             bytes(out) / 1e6);
  fmt::print("\nint8 kernels: {}, {} threads. Wrote {}\n", int8_gemm_isa(), num_threads(), out);
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto flags = std::make_shared<QuantizeFlags>();
  QuantizeFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Quantise a model to int8 (per-channel weights, calibrated inputs) and compare its "
      "accuracy and speed with the float model.");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("-o,--out", f.out,
                  "Where to write the int8 model (default: MODEL-int8.safetensors beside it)");
  cmd->add_option("--dataset", f.dataset,
                  "Data set name or directory (default: the one the model was trained on)");
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--calibration", f.calibration,
                  "Training images whose activations set the input ranges")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Which calibration images are drawn")->capture_default_str();
  cmd->add_option("--latency-images", f.latency_images,
                  "Single images timed for the latency median")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--repeats", f.repeats, "Timed passes over the test set (the median counts)")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--limit", f.limit, "Measure on the first N test images only")->check(kPositive);
  cmd->add_flag("--json", f.json, "Print one JSON object instead of the table");
  add_threads_flag(*cmd, f.common);
  cmd->callback([flags] { run_quantize(*flags); });
}

}  // namespace scratchnet::cli
