// scratchnet export — a model file as ONNX, for other runtimes (include/scratchnet/io/onnx.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/io/onnx.h"

namespace scratchnet::cli {

namespace {

struct ExportFlags {
  std::string model;
  std::string onnx;
};

// "pixel / 255" or "(pixel / 255 - 0.1307) / 0.3081": what the graph input expects.
std::string describe_preprocess(const Preprocess& p) {
  return p.normalize ? fmt::format("(pixel / 255 - {}) / {}", p.mean, p.std) : "pixel / 255";
}

void run_export(const ExportFlags& f) {
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights,
           "'{}' has no trained weights: export needs a model file (as 'scratchnet train' writes)",
           f.model);
  check_output_file("--onnx", f.onnx);
  LoadedModel& m = src.loaded;
  OnnxExportSummary s = export_onnx(f.onnx, m.model, m.info);
  fmt::print("wrote {}: ONNX opset {}, {} nodes, {} parameters, {} bytes\n", f.onnx, kOnnxOpset,
             s.nodes, m.model.num_params(), s.bytes);
  fmt::print("input \"input\" (batch, {}) = {}; output \"logits\" (batch, {})\n",
             fmt::join(m.model.input_shape(), ", "), describe_preprocess(m.info.preprocess),
             fmt::join(m.model.output_shape(m.model.size() - 1), ", "));
}

}  // namespace

void add_export(CLI::App& app) {
  auto flags = std::make_shared<ExportFlags>();
  ExportFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Export a model file to ONNX (opset 13). The graph takes preprocessed images (the model "
      "file's scaling or normalisation, recorded in the ONNX metadata) with a dynamic batch "
      "dimension and returns the logits.");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("--onnx", f.onnx, "The ONNX file to write (its directory must exist)")
      ->required();
  cmd->callback([flags] { run_export(*flags); });
}

}  // namespace scratchnet::cli
