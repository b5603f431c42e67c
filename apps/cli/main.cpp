// scratchnet — train, evaluate, inspect, use and export convolutional image classifiers.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "common.h"
#include "scratchnet/check.h"

int main(int argc, char** argv) {
  CLI::App app{
      "scratchnet: build, train, evaluate, inspect and ship convolutional image classifiers\n"
      "(predict, serve, export to ONNX, quantise to int8, prune, tune hyper-parameters,\n"
      "preview augmentation).\n"
      "Run 'scratchnet COMMAND --help' for the flags of a command."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "scratchnet 0.1.0");
  scratchnet::cli::add_train(app);
  scratchnet::cli::add_finetune(app);
  scratchnet::cli::add_eval(app);
  scratchnet::cli::add_info(app);
  scratchnet::cli::add_predict(app);
  scratchnet::cli::add_export(app);
  scratchnet::cli::add_serve(app);
  scratchnet::cli::add_quantize(app);
  scratchnet::cli::add_prune(app);
  scratchnet::cli::add_tune(app);
  scratchnet::cli::add_augment(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const scratchnet::Error& e) {
    fmt::print(stderr, "scratchnet: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "scratchnet: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
