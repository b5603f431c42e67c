#include "scratchnet/layers/batch_norm1d.h"

#include <fmt/format.h>

#include "scratchnet/check.h"

namespace scratchnet {

BatchNorm1d::BatchNorm1d(const BatchNormOptions& options) : BatchNorm("BatchNorm1d", options) {}

Shape BatchNorm1d::output_shape(const Shape& in) const {
  const int64_t f = options().num_features;
  if (in.size() != 2 && in.size() != 3)
    fail_input_shape(kind(), fmt::format("a 2-D input (N, {}) or a 3-D input (N, {}, L)", f, f),
                     in);
  SN_CHECK(in[1] == f, "BatchNorm1d: expects {} features, got {} (input shape {})", f, in[1],
           shape_str(in));
  return in;
}

}  // namespace scratchnet
