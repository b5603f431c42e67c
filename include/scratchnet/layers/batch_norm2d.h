// batch_norm2d.h — batch normalisation of image batches, as torch.nn.BatchNorm2d (affine,
// tracking running statistics).
//
//   in, out (N, C, H, W)       C = num_features
//   weight, bias (C)           gamma (init 1), beta (init 0)
//   running_mean, running_var (C), num_batches_tracked ()
//
// Each channel is normalised over its N * H * W values: with the batch statistics in
// training, with the running statistics in eval. batch_norm.h has the formulas and kernels.
#pragma once

#include "scratchnet/layers/batch_norm.h"

namespace scratchnet {

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options);  // throws on invalid options

  std::string kind() const override { return "BatchNorm2d"; }
  Shape output_shape(const Shape& in) const override;  // (N, C, H, W) -> the same
};

}  // namespace scratchnet
