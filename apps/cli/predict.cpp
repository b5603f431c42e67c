// scratchnet predict — the most likely classes of PNG/JPEG images (or IDX images) under a model.
//
// Each image becomes an MNIST-style digit of the model's input size (data/image.h), then
// goes through the model file's recorded preprocessing, all in one pass (batches of up to
// kBatch images). An IDX file contributes the images --index picks (default: all), as they are.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/classifier.h"
#include "scratchnet/data/idx.h"
#include "scratchnet/data/image.h"

namespace scratchnet::cli {

namespace {

constexpr int64_t kBatch = 1000;

struct PredictFlags {
  CommonFlags common;
  std::string model;
  std::vector<std::string> inputs;
  int64_t top = 3;
  bool json = false;
  std::string index;  // "I" or "I:J" (J excluded), for IDX inputs
};

// The first bytes of a file, to tell images from IDX files; the error names a missing file.
std::vector<uint8_t> first_bytes(const std::string& path, size_t n) {
  std::error_code ec;
  SN_CHECK(std::filesystem::exists(path, ec), "{}: no such file", path);
  SN_CHECK(!std::filesystem::is_directory(path, ec), "{}: is a directory, expected an image file",
           path);
  std::ifstream in(path, std::ios::binary);
  SN_CHECK(in.good(), "{}: cannot open for reading", path);
  std::vector<uint8_t> bytes(n);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

bool looks_like_idx(const std::vector<uint8_t>& b) {
  return b.size() >= 3 &&
         ((b[0] == 0 && b[1] == 0 && b[2] == 0x08) || (b[0] == 0x1f && b[1] == 0x8b));
}

// [begin, end) of the IDX images --index picks out of n.
std::pair<int64_t, int64_t> index_range(const std::string& spec, int64_t n,
                                        const std::string& file) {
  if (spec.empty()) return {0, n};
  auto number = [&](const std::string& s) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SN_CHECK(used == s.size() && v >= 0, "--index: expected I or I:J (image numbers), got '{}'",
             spec);
    return v;
  };
  const size_t colon = spec.find(':');
  const int64_t begin = number(spec.substr(0, colon));
  const int64_t end = colon == std::string::npos ? begin + 1 : number(spec.substr(colon + 1));
  SN_CHECK(begin < end && end <= n, "--index {}: {} holds images 0 to {}", spec, file, n - 1);
  return {begin, end};
}

void run_predict(const PredictFlags& f) {
  apply_threads(f.common);
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights, "'{}' has no trained weights: predict needs a model file", f.model);
  Classifier classifier(std::move(src.loaded), f.model);
  const int64_t classes = classifier.classes(), side = classifier.side();

  std::vector<uint8_t> digits;     // (items, side, side)
  std::vector<std::string> names;  // (items) what each item is, for the output
  std::vector<int64_t> idx_index;  // (items) the image number in an IDX file, or -1
  bool any_idx = false;
  std::vector<uint8_t> digit;  // (side, side)
  for (const std::string& path : f.inputs) {
    const std::vector<uint8_t> head = first_bytes(path, 8);
    if (!image_format(head).empty()) {
      to_mnist_style(digit, read_image(path), classifier.style());
      digits.insert(digits.end(), digit.begin(), digit.end());
      names.push_back(path);
      idx_index.push_back(-1);
      continue;
    }
    SN_CHECK(looks_like_idx(head), "{}: not a PNG or JPEG image, nor an IDX file of images", path);
    any_idx = true;
    IdxArray a = read_idx(path);
    SN_CHECK(a.dims.size() == 3 && a.dims[1] == side && a.dims[2] == side,
             "{}: IDX images of shape {} do not fit a model built for {}", path, shape_str(a.dims),
             shape_str(classifier.model().input_shape()));
    auto [begin, end] = index_range(f.index, a.dims[0], path);
    for (int64_t i = begin; i < end; ++i) {
      digits.insert(digits.end(), a.data.begin() + i * side * side,
                    a.data.begin() + (i + 1) * side * side);
      names.push_back(path);
      idx_index.push_back(i);
    }
  }
  SN_CHECK(f.index.empty() || any_idx, "--index picks images of IDX files, and none was given");
  const int64_t n = static_cast<int64_t>(names.size());
  std::vector<double> probs;  // (n, classes)
  classifier.probabilities(probs, digits, kBatch);

  const int64_t k = std::min(f.top, classes);
  nlohmann::json results = nlohmann::json::array();
  for (int64_t i = 0; i < n; ++i) {
    const double* p = probs.data() + i * classes;
    const std::vector<int64_t> ranked = top_classes(p, classes, k);
    std::string label = idx_index[i] < 0 ? names[i] : fmt::format("{}[{}]", names[i], idx_index[i]);
    if (!f.json) {
      std::vector<std::string> parts;
      for (int64_t j = 0; j < k; ++j)
        parts.push_back(
            fmt::format("{} ({})", classifier.class_name(ranked[j]), percent(p[ranked[j]])));
      fmt::print("{}: {}\n", label, fmt::join(parts, ", "));
      continue;
    }
    nlohmann::json top = nlohmann::json::array();
    for (int64_t j = 0; j < k; ++j)
      top.push_back({{"class", classifier.class_name(ranked[j])},
                     {"label", ranked[j]},
                     {"probability", p[ranked[j]]}});
    nlohmann::json r = {
        {"file", names[i]}, {"class", classifier.class_name(ranked[0])}, {"top", top}};
    if (idx_index[i] >= 0) r["index"] = idx_index[i];
    results.push_back(r);
  }
  if (f.json)
    fmt::print("{}\n", nlohmann::json{{"model", f.model}, {"predictions", results}}.dump());
}

}  // namespace

void add_predict(CLI::App& app) {
  auto flags = std::make_shared<PredictFlags>();
  PredictFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify PNG/JPEG images (made MNIST-style: gray, inverted if light, cropped, scaled into "
      "20x20, centred in 28x28) or IDX images with a model file.");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("images", f.inputs, "PNG or JPEG files, or IDX image files (see --index)")
      ->required();
  cmd->add_option("--top", f.top, "How many classes to show per image")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--index", f.index, "Images of IDX files to classify: I or I:J (J excluded)");
  cmd->add_flag("--json", f.json, "Print one JSON object instead of lines");
  add_threads_flag(*cmd, f.common);
  cmd->callback([flags] { run_predict(*flags); });
}

}  // namespace scratchnet::cli
