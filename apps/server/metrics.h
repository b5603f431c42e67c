// metrics.h — what GET /metrics reports: request counts and latency percentiles.
//
// Counts every request by route and every response by status class; keeps the latencies of
// the last kWindow predictions for percentiles (nearest rank, as Prometheus summaries do).
// Safe to use from the server's threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace scratchnet::server {

class Metrics {
 public:
  static constexpr size_t kWindow = 10000;

  Metrics();
  // One answered request: its route ("/predict", "other" for unknown paths), HTTP status, and
  // for a prediction the seconds from reading the body to the answer (< 0: none).
  void record(const std::string& route, int status, double predict_seconds);
  void add_in_flight(int delta);

  // {"uptime_s", "in_flight", "requests": {route: n}, "responses": {"2xx": n, ...},
  //  "predict": {"count", "window", "latency_ms": {"p50", "p90", "p99", "max", "mean"}}}
  nlohmann::json to_json() const;

 private:
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, int64_t> requests_, responses_;
  int64_t predictions_ = 0, in_flight_ = 0;
  std::vector<double> latencies_;  // (<= kWindow) seconds, a ring once full
  size_t next_ = 0;
};

// The p-quantile (p in [0, 1]) of `values` by nearest rank; 0 for none.
double percentile(std::vector<double> values, double p);

}  // namespace scratchnet::server
