// server.h — a trained model behind HTTP (scratchnet serve), with a drawing pad in the browser.
//
//   POST /predict   body: a PNG or JPEG image, made MNIST-style as `scratchnet predict` does
//                   (data/image.h), or JSON: an array of S*S numbers, or {"pixels": [...]}, an
//                   MNIST-style digit as in the IDX files (row by row, 0 background to 255 ink).
//                   The kind is told from the bytes, whatever the Content-Type says.
//                   200 {"class": "7", "label": 7, "probabilities": [K], "top": [{"class",
//                   "label", "probability"} x 3], "latency_ms": 0.21}; with ?digit=1 also
//                   "digit": [S*S], the digit the model saw.
//   GET /           the drawing page (page.html)
//   GET /healthz    {"status": "ok", "model", "classes", "class_names", "input": [1, S, S]}
//   GET /metrics    request counts and latency percentiles (metrics.h)
//
// Every error is JSON {"error": "..."} with its status: 400 a malformed body, 404 an unknown
// path, 405 a known path with another method, 413 a body over max_body (refused from its
// Content-Length before it is read), 503 when the server is full or the model stays busy for
// `timeout`. Nothing a client sends ends the server.
//
// Limits: `threads` connections are served at once and up to `max_queue` more wait; past that a
// connection is answered 503 at once. Reading a request and writing an answer each time out
// after `timeout` seconds, and so does waiting for the model (one prediction runs at a time:
// a prediction takes well under a millisecond, and the kernels use the machine's threads).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "scratchnet/check.h"
#include "scratchnet/classifier.h"

namespace scratchnet::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback only unless asked
  int port = 8080;                 // 0: any free port (port() tells which)
  int64_t max_body = 1 << 20;      // bytes
  int threads = 8;                 // connections served at once
  int max_queue = 64;              // connections waiting beyond those
  double timeout = 5;              // seconds
  ImageLimits image_limits{.max_side = 4096, .max_pixels = 16'000'000};
  bool log = false;  // one line per request on stderr
};

// An error a client caused, with the HTTP status that says so.
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The digit (S, S), S = style.size, that a /predict body asks about. Throws HttpError 400
// naming what is wrong: not an image nor JSON, a broken or oversized image, a blank image,
// JSON of the wrong length or with values outside [0, 255].
std::vector<uint8_t> digit_from_body(const std::string& body, const MnistStyle& style,
                                     const ImageLimits& limits);

class Server {
 public:
  // `classifier` must outlive the server; `model_name` is what /healthz calls it.
  Server(Classifier& classifier, std::string model_name, ServerOptions options);
  ~Server();

  // Binds host:port; throws Error naming them when it cannot. Returns the port.
  int bind();
  // Serves until stop() (from another thread or a signal-watching thread).
  void run();
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scratchnet::server
