// metrics.cpp — request counts and latency percentiles for GET /metrics (metrics.h).
#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace scratchnet::server {

Metrics::Metrics() : start_(std::chrono::steady_clock::now()) { latencies_.reserve(kWindow); }

void Metrics::record(const std::string& route, int status, double predict_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[route];
  ++responses_[std::to_string(status / 100) + "xx"];
  if (predict_seconds < 0) return;
  ++predictions_;
  if (latencies_.size() < kWindow) {
    latencies_.push_back(predict_seconds);
  } else {
    latencies_[next_] = predict_seconds;
    next_ = (next_ + 1) % kWindow;
  }
}

void Metrics::add_in_flight(int delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  in_flight_ += delta;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  const size_t i = std::min(values.size() - 1, rank == 0 ? 0 : rank - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(i), values.end());
  return values[i];
}

nlohmann::json Metrics::to_json() const {
  std::vector<double> window;
  nlohmann::json j;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    window = latencies_;
    j["uptime_s"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    j["in_flight"] = in_flight_;
    j["requests"] = requests_;
    j["responses"] = responses_;
    j["predict"]["count"] = predictions_;
  }
  const double ms = 1e3;
  const double mean =
      window.empty() ? 0 : std::accumulate(window.begin(), window.end(), 0.0) / window.size();
  const double max = window.empty() ? 0 : *std::max_element(window.begin(), window.end());
  j["predict"]["window"] = window.size();
  j["predict"]["latency_ms"] = {{"p50", ms * percentile(window, 0.5)},
                                {"p90", ms * percentile(window, 0.9)},
                                {"p99", ms * percentile(window, 0.99)},
                                {"max", ms * max},
                                {"mean", ms * mean}};
  return j;
}

}  // namespace scratchnet::server
