// common.h — what the subcommands share: flags that several take, model sources, output.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "scratchnet/io/model_file.h"
#include "scratchnet/train/trainer.h"

namespace scratchnet::cli {

// Registers each subcommand on `app`; the callbacks run it.
void add_train(CLI::App& app);
void add_finetune(CLI::App& app);  // finetune.cpp
void add_eval(CLI::App& app);
void add_info(CLI::App& app);
void add_predict(CLI::App& app);   // predict.cpp
void add_export(CLI::App& app);    // export.cpp
void add_serve(CLI::App& app);     // serve.cpp
void add_quantize(CLI::App& app);  // quantize.cpp
void add_prune(CLI::App& app);     // prune.cpp
void add_augment(CLI::App& app);   // augment.cpp
void add_tune(CLI::App& app);      // tune.cpp

// --threads N (default: every core) and --data-dir DIR, as several commands take them.
struct CommonFlags {
  int threads = 0;  // 0: leave the default
  std::string data_dir = "data";
};
// The positional MODEL argument of the commands that read a model file.
void add_model_file_arg(CLI::App& cmd, std::string& model);
void add_threads_flag(CLI::App& cmd, CommonFlags& flags);
void add_data_dir_flag(CLI::App& cmd, CommonFlags& flags);
void apply_threads(const CommonFlags& flags);

// Flag checks with plain messages ("--epochs: must be positive, got 0").
extern const CLI::Validator kPositive;     // > 0
extern const CLI::Validator kNonNegative;  // >= 0
extern const CLI::Validator kFraction;     // in (0, 1)

// A model given as a preset name, a spec file (.json) or a model file (.safetensors).
struct ModelSource {
  LoadedModel loaded;  // built; weights only for model files
  bool has_weights = false;
  bool is_preset = false;
  std::string name;  // as the user wrote it
  std::string file;  // the model file read (DIR/model.safetensors for a run directory), or empty
};
ModelSource open_model(const std::string& name);
// Checks that `path`, given with `flag`, names a file in an existing directory:
// "--onnx out/m.onnx: directory 'out' does not exist" otherwise.
void check_output_file(const std::string& flag, const std::string& path);

// Progress of a training run: a redrawn bar on a terminal, plain lines otherwise.
class Progress {
 public:
  explicit Progress(bool quiet);
  void step(const StepInfo& s);
  void epoch(const EpochMetrics& m);

 private:
  bool quiet_, tty_;
  int64_t last_line_step_ = 0;
};

std::string percent(double fraction);  // "98.95%"
std::string duration(double seconds);  // "1:02:03", "4:05", "12.3 s"

}  // namespace scratchnet::cli
