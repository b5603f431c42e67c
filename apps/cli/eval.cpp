// scratchnet eval — loss, accuracy, per-class accuracy and confusion matrix of a model file.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/io/atomic_file.h"
#include "scratchnet/train/evaluate.h"

namespace scratchnet::cli {

namespace {

struct EvalFlags {
  CommonFlags common;
  std::string model;
  std::string dataset;
  std::string split = "test";
  int64_t batch_size = 1000;
  int64_t limit = 0;
  bool json = false;
  std::string predictions;
};

void print_report(const EvalResult& r, const std::vector<std::string>& names) {
  fmt::print("loss {:.4f}  accuracy {} ({}/{})\n", r.loss, percent(r.accuracy), r.correct(),
             r.count);
  auto name = [&](int64_t c) {
    return c < static_cast<int64_t>(names.size()) ? names[c] : std::to_string(c);
  };
  size_t width = 5;
  for (int64_t c = 0; c < r.classes; ++c) width = std::max(width, name(c).size());
  fmt::print("\nper class:\n");
  for (int64_t c = 0; c < r.classes; ++c) {
    double a = r.class_accuracy(c);
    fmt::print("  {:>{}}  {}\n", name(c), width, std::isnan(a) ? "no images" : percent(a));
  }
  fmt::print("\nconfusion matrix (rows: true class, columns: predicted):\n  {:>{}}", "", width);
  for (int64_t c = 0; c < r.classes; ++c) fmt::print(" {:>6}", name(c).substr(0, 6));
  fmt::print("\n");
  for (int64_t t = 0; t < r.classes; ++t) {
    fmt::print("  {:>{}}", name(t), width);
    for (int64_t p = 0; p < r.classes; ++p) fmt::print(" {:>6}", r.confusion[t * r.classes + p]);
    fmt::print("\n");
  }
}

void run_eval(const EvalFlags& f) {
  apply_threads(f.common);
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights, "'{}' has no trained weights: eval needs a model file", f.model);
  LoadedModel& m = src.loaded;
  std::string dataset = f.dataset.empty() ? m.info.dataset : f.dataset;
  SN_CHECK(!dataset.empty(), "{} does not record its data set: give --dataset", f.model);
  DatasetSplits data = load_dataset(dataset, f.common.data_dir);
  Dataset& set = f.split == "train" ? data.train : data.test;
  if (f.limit > 0) set = take_first(set, std::min(f.limit, set.size()));
  EvalResult r = evaluate(m.model, set, m.info.preprocess, f.batch_size);
  if (!f.predictions.empty()) {
    std::string lines;
    for (int32_t p : r.predicted) lines += std::to_string(p) + "\n";
    write_text_atomic(f.predictions, lines);
  }
  const auto& names = m.info.class_names.empty() ? set.class_names : m.info.class_names;
  if (f.json) {
    fmt::print("{}\n", r.to_json(names));
    return;
  }
  fmt::print("{} on {} ({} split, {} images)\n", f.model, dataset, f.split, set.size());
  print_report(r, names);
}

}  // namespace

void add_eval(CLI::App& app) {
  auto flags = std::make_shared<EvalFlags>();
  EvalFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "eval", "Evaluate a model file: loss, accuracy, per-class accuracy, confusion matrix.");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("--dataset", f.dataset,
                  "Data set name or directory (default: the one the model was trained on)");
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--split", f.split, "test or train")
      ->check(CLI::IsMember({"test", "train"}))
      ->capture_default_str();
  cmd->add_option("--batch-size", f.batch_size, "Images per forward pass")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--limit", f.limit, "Evaluate only the first N images")->check(kPositive);
  cmd->add_flag("--json", f.json, "Print one JSON object instead of the report");
  cmd->add_option("--predictions", f.predictions,
                  "Write the predicted class of every image to FILE, one per line");
  add_threads_flag(*cmd, f.common);
  cmd->callback([flags] { run_eval(*flags); });
}

}  // namespace scratchnet::cli
