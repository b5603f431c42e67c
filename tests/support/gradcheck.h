// gradcheck.h — finite-difference gradient checks in double precision.
//
// For a function out = f(inputs) the check draws a fixed random projection r and compares
// the analytic gradient of L = sum(out * r), computed by `backward(d_out = r)`, with the
// central difference (L(x + eps) - L(x - eps)) / (2 eps) for every element of every input.
// Callers choose inputs away from kinks (ReLU at 0, max-pool ties) by more than eps.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "scratchnet/rng.h"

namespace scratchnet::testing {

struct GradInput {
  std::string name;
  std::vector<double>* value;  // perturbed in place, restored afterwards
  std::vector<double>* grad;   // zeroed before backward, then filled (or added into) by it
};

// forward(out): recompute `out` (resize as needed) from the current input values.
// backward(d_out): fill each GradInput::grad for the projection d_out.
inline void check_gradients(const std::function<void(std::vector<double>& out)>& forward,
                            const std::function<void(const std::vector<double>& d_out)>& backward,
                            const std::vector<GradInput>& inputs, double eps = 1e-6,
                            double rtol = 1e-6, double atol = 1e-8, uint64_t seed = 7) {
  std::vector<double> out;
  forward(out);
  ASSERT_FALSE(out.empty()) << "forward produced no output";
  std::vector<double> r(out.size());
  Rng rng(seed);
  for (double& v : r) v = rng.uniform(-1.0f, 1.0f);
  auto loss = [&] {
    forward(out);
    double sum = 0;
    for (size_t i = 0; i < out.size(); ++i) sum += out[i] * r[i];
    return sum;
  };
  for (const auto& in : inputs) in.grad->assign(in.value->size(), 0.0);
  forward(out);
  backward(r);
  for (const auto& in : inputs) {
    ASSERT_EQ(in.grad->size(), in.value->size()) << in.name << ": gradient has the wrong size";
    int failures = 0;
    for (size_t i = 0; i < in.value->size(); ++i) {
      double saved = (*in.value)[i];
      (*in.value)[i] = saved + eps;
      double plus = loss();
      (*in.value)[i] = saved - eps;
      double minus = loss();
      (*in.value)[i] = saved;
      double numeric = (plus - minus) / (2 * eps);
      double analytic = (*in.grad)[i];
      bool ok = std::abs(analytic - numeric) <= atol + rtol * std::abs(numeric);
      EXPECT_TRUE(ok) << in.name << "[" << i << "]: analytic " << analytic << ", numeric "
                      << numeric;
      if (!ok && ++failures == 10) return;  // enough to diagnose
    }
  }
}

// Uniform values in [low, high) as doubles, from a seeded stream.
inline std::vector<double> random_doubles(size_t n, uint64_t seed, double low = -1.0,
                                          double high = 1.0) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = low + (high - low) * static_cast<double>(rng.uniform());
  return v;
}

}  // namespace scratchnet::testing
