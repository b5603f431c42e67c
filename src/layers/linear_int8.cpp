#include "scratchnet/layers/linear_int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {
constexpr int64_t kRows = 48;  // rows per block split over threads: a multiple of the tile
}  // namespace

LinearInt8::LinearInt8(const LinearOptions& options)
    : options_(options), q_(Linear(options).weight().value.shape()) {  // Linear checks options
  options_.bias = true;
}

Shape LinearInt8::output_shape(const Shape& in) const {
  const int64_t f_in = options_.in_features;
  if (in.size() != 2 || in[1] != f_in)
    fail_input_shape(kind(), fmt::format("a 2-D input (N, {}) (add a Flatten before it)", f_in),
                     in);
  return {in[0], options_.out_features};
}

void LinearInt8::forward(Tensor& out, const Tensor& in, Mode /*mode*/) {
  const Shape shape = output_shape(in.shape());
  check_shape(out, shape, "LinearInt8 forward: output");
  if (!q_.prepared()) q_.prepare();
  const Int8Packed& w = q_.packed();
  const int64_t n = shape[0], f_in = options_.in_features, f_out = options_.out_features;
  in_q_.resize(n * w.kp);
  acc_.resize(n * f_out);
  parallel_for((n + kRows - 1) / kRows, [&](int64_t begin, int64_t end) {
    const int64_t r0 = begin * kRows, r1 = std::min(n, end * kRows);
    for (int64_t r = r0; r < r1; ++r) {
      q_.quantize(in_q_.data() + r * w.kp, in.data() + r * f_in, f_in);
      std::memset(in_q_.data() + r * w.kp + f_in, 0, w.kp - f_in);
    }
    int8_gemm(acc_.data() + r0 * f_out, f_out, in_q_.data() + r0 * w.kp, w.kp, r1 - r0, w);
    for (int64_t r = r0; r < r1; ++r)
      q_.output_row(out.data() + r * f_out, acc_.data() + r * f_out);
  });
}

void LinearInt8::backward(Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  fail("LinearInt8: an int8 model runs inference only; train or fine-tune the float model");
}

std::string LinearInt8::describe() const {
  return fmt::format("LinearInt8({}, {})", options_.in_features, options_.out_features);
}

int64_t LinearInt8::flops(const Shape& in) const {
  const int64_t n = output_shape(in)[0];
  return 2 * n * options_.in_features * options_.out_features + n * options_.out_features;
}

}  // namespace scratchnet
