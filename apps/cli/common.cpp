#include "common.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "scratchnet/check.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/parallel.h"
#include "scratchnet/presets.h"

namespace scratchnet::cli {

namespace {
CLI::Validator number_check(const char* name, bool (*ok)(double), const char* wanted) {
  return CLI::Validator(
      [ok, wanted](std::string& in) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(in, &used);
          if (used != in.size()) throw std::invalid_argument(in);
        } catch (const std::exception&) {
          return "expected a number, got '" + in + "'";
        }
        return ok(v) ? std::string() : std::string("must be ") + wanted + ", got " + in;
      },
      name);
}
}  // namespace

const CLI::Validator kPositive = number_check(
    "POSITIVE", [](double v) { return v > 0; }, "positive");
const CLI::Validator kNonNegative = number_check(
    "NON-NEGATIVE", [](double v) { return v >= 0; }, "at least 0");
const CLI::Validator kFraction = number_check(
    "FRACTION", [](double v) { return v > 0 && v < 1; }, "in (0, 1)");

void add_model_file_arg(CLI::App& cmd, std::string& model) {
  cmd.add_option("model", model, "Model file (or a run directory holding model.safetensors)")
      ->required();
}

void add_threads_flag(CLI::App& cmd, CommonFlags& flags) {
  cmd.add_option("--threads", flags.threads, "Threads for the kernels (default: every core)")
      ->check(CLI::Range(1, 1024));
}

void add_data_dir_flag(CLI::App& cmd, CommonFlags& flags) {
  cmd.add_option("--data-dir", flags.data_dir,
                 "Where named data sets live (DATA/mnist, DATA/fashion-mnist)")
      ->capture_default_str();
}

void apply_threads(const CommonFlags& flags) {
  if (flags.threads > 0) set_num_threads(flags.threads);
}

ModelSource open_model(const std::string& name) {
  ModelSource src;
  src.name = name;
  auto presets = preset_names();
  if (std::find(presets.begin(), presets.end(), name) != presets.end()) {
    src.loaded.model = make_preset(name);
    src.is_preset = true;
    return src;
  }
  if (name.size() > 5 && name.substr(name.size() - 5) == ".json") {
    src.loaded.model = load_model_spec(name);
    return src;
  }
  SN_CHECK(std::filesystem::exists(name),
           "model '{}' is neither a preset ({}), a model spec (.json) nor an existing model file",
           name, fmt::join(presets, ", "));
  if (std::filesystem::is_directory(name)) {
    std::string inside = (std::filesystem::path(name) / "model.safetensors").string();
    SN_CHECK(std::filesystem::exists(inside), "{} is a directory without a model.safetensors",
             name);
    src.file = inside;
  } else {
    src.file = name;
  }
  src.loaded = load_model(src.file);
  src.has_weights = true;
  return src;
}

void check_output_file(const std::string& flag, const std::string& path) {
  const std::filesystem::path out(path);
  const std::filesystem::path dir = out.parent_path();
  SN_CHECK(dir.empty() || std::filesystem::is_directory(dir),
           "{} {}: directory '{}' does not exist", flag, path, dir.string());
  SN_CHECK(!std::filesystem::is_directory(out), "{} {}: is a directory, expected a file name", flag,
           path);
}

std::string percent(double fraction) { return fmt::format("{:.2f}%", 100.0 * fraction); }

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  auto s = static_cast<int64_t>(std::lround(seconds));
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
}

Progress::Progress(bool quiet) : quiet_(quiet), tty_(isatty(fileno(stderr)) != 0) {}

void Progress::step(const StepInfo& s) {
  if (quiet_) return;
  double left = (s.steps - s.step) * (s.seconds / s.step);
  if (tty_) {
    // Redraw at most ~20 times a second worth of steps; always on the last one.
    if (s.step != s.steps && s.step % std::max<int64_t>(1, s.steps / 200) != 0) return;
    constexpr int kWidth = 28;
    int filled = static_cast<int>(kWidth * s.step / s.steps);
    fmt::print(stderr,
               "\r\033[Kepoch {}/{} [{}{}] {}/{}  loss {:.4f}  acc {}  {:.0f} img/s  left {}",
               s.epoch, s.epochs, std::string(filled, '#'), std::string(kWidth - filled, '.'),
               s.step, s.steps, s.loss, percent(s.accuracy), s.images_per_second, duration(left));
    if (s.step == s.steps) fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
    return;
  }
  // Not a terminal: a plain line every tenth of the epoch.
  if (s.step * 10 / s.steps == last_line_step_ * 10 / s.steps && s.step != 1) return;
  last_line_step_ = s.step;
  fmt::print(stderr, "epoch {}/{} step {}/{}  loss {:.4f}  acc {}  {:.0f} img/s  left {}\n",
             s.epoch, s.epochs, s.step, s.steps, s.loss, percent(s.accuracy), s.images_per_second,
             duration(left));
}

void Progress::epoch(const EpochMetrics& m) {
  last_line_step_ = 0;
  std::string test =
      std::isnan(m.test_accuracy)
          ? std::string()
          : fmt::format("  test loss {:.4f} acc {}", m.test_loss, percent(m.test_accuracy));
  std::string val = std::isnan(m.val_accuracy) ? std::string()
                                               : fmt::format("  val loss {:.4f} acc {}", m.val_loss,
                                                             percent(m.val_accuracy));
  fmt::print("epoch {}  train loss {:.4f} acc {}{}{}  {}  {:.0f} img/s\n", m.epoch, m.train_loss,
             percent(m.train_accuracy), val, test, duration(m.seconds), m.images_per_second);
  std::fflush(stdout);
}

}  // namespace scratchnet::cli
