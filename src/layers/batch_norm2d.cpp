#include "scratchnet/layers/batch_norm2d.h"

#include <fmt/format.h>

#include "scratchnet/check.h"

namespace scratchnet {

BatchNorm2d::BatchNorm2d(const BatchNormOptions& options) : BatchNorm("BatchNorm2d", options) {}

Shape BatchNorm2d::output_shape(const Shape& in) const {
  const int64_t c = options().num_features;
  if (in.size() != 4) fail_input_shape(kind(), fmt::format("a 4-D input (N, {}, H, W)", c), in);
  SN_CHECK(in[1] == c, "BatchNorm2d: expects {} channels, got {} (input shape {})", c, in[1],
           shape_str(in));
  return in;
}

}  // namespace scratchnet
