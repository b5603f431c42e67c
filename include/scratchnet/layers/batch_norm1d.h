// batch_norm1d.h — batch normalisation of feature batches, as torch.nn.BatchNorm1d (affine,
// tracking running statistics).
//
//   in, out (N, F) or (N, F, L)   F = num_features
//   weight, bias (F)              gamma (init 1), beta (init 0)
//   running_mean, running_var (F), num_batches_tracked ()
//
// Each feature is normalised over its N (or N * L) values: with the batch statistics in
// training, with the running statistics in eval. batch_norm.h has the formulas and kernels.
#pragma once

#include "scratchnet/layers/batch_norm.h"

namespace scratchnet {

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options);  // throws on invalid options

  std::string kind() const override { return "BatchNorm1d"; }
  Shape output_shape(const Shape& in) const override;  // (N, F) or (N, F, L) -> the same
};

}  // namespace scratchnet
