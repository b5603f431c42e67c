// scratchnet serve — a model file behind HTTP: a drawing pad at /, JSON at /predict
// (apps/server/server.h says what each route takes and answers).
#include <fmt/format.h>
#include <pthread.h>

#include <csignal>
#include <thread>

#include "../server/server.h"
#include "common.h"
#include "scratchnet/check.h"

namespace scratchnet::cli {

namespace {

struct ServeFlags {
  CommonFlags common;
  std::string model;
  server::ServerOptions server;
};

void run_serve(const ServeFlags& f) {
  // Ctrl-C and SIGTERM stop the server cleanly: every thread started from here on has them
  // blocked, and one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  apply_threads(f.common);
  ModelSource src = open_model(f.model);
  SN_CHECK(src.has_weights, "'{}' has no trained weights: serve needs a model file", f.model);
  Classifier classifier(std::move(src.loaded), f.model);
  server::Server srv(classifier, f.model, f.server);
  const int port = srv.bind();
  std::thread([&srv, stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    srv.stop();
  }).detach();
  fmt::print(
      "serving {} ({} classes) on http://{}:{}/ — draw at /, POST images to /predict; "
      "Ctrl-C stops\n",
      f.model, classifier.classes(), f.server.host, port);
  std::fflush(stdout);
  srv.run();
  fmt::print("stopped\n");
}

}  // namespace

void add_serve(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  ServeFlags& f = *flags;
  server::ServerOptions& s = f.server;
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve a model file over HTTP: a page to draw digits on (GET /), predictions for PNG/JPEG "
      "or JSON pixel bodies (POST /predict), GET /healthz and GET /metrics.");
  add_model_file_arg(*cmd, f.model);
  cmd->add_option("--host", s.host, "Address to listen on (0.0.0.0: every interface)")
      ->capture_default_str();
  cmd->add_option("--port", s.port, "Port to listen on (0: any free port, printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--max-body", s.max_body, "Largest request body, in bytes (e.g. 1048576, 2MB)")
      ->transform(CLI::AsSizeValue(false))
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--workers", s.threads, "Connections served at once")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--max-queue", s.max_queue,
                  "Connections waiting beyond those; more are answered 503")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--timeout", s.timeout,
                  "Seconds to read a request, write an answer, or wait for the model")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_flag("--log", s.log, "Print one line per request on stderr");
  add_threads_flag(*cmd, f.common);
  cmd->callback([flags] { run_serve(*flags); });
}

}  // namespace scratchnet::cli
