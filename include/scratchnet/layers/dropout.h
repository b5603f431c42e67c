// dropout.h — inverted dropout, as torch.nn.Dropout.
//
//   in   any shape, e.g. (N, C, H, W) or (N, F)
//   out  same shape as in
//
// Mode::kTrain: each element is zeroed with probability p and the others are scaled by
// 1 / (1 - p), so the expected output equals the input; p == 1 zeroes everything.
// Mode::kEval: the identity.
//
// The mask comes from the layer's own Rng, seeded with options.seed, and is drawn
// sequentially (one uniform per element, in storage order) so it is the same for any thread
// count. Each training forward draws a fresh mask and keeps it (in a reused buffer) for
// backward, which multiplies the gradient by the same mask. rng() exposes the stream so a
// trainer can save, restore or reseed it to resume a run exactly.
// No parameters; flops: one per element (the multiply by the mask).
#pragma once

#include <cstdint>

#include "scratchnet/layer.h"
#include "scratchnet/rng.h"

namespace scratchnet {

struct DropoutOptions {
  float p = 0.5f;     // probability of zeroing an element, in [0, 1]
  uint64_t seed = 0;  // seeds the layer's mask stream
};

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// mask (n) is overwritten with 0 (dropped, when rng.uniform() < p) or 1 / (1 - p) (kept),
// drawing one uniform per element in order; all zeros when p == 1.
template <typename T>
void dropout_mask(T* mask, int64_t n, float p, Rng& rng);
// out (n) = in (n) * mask (n), overwritten.
template <typename T>
void dropout_forward(T* out, const T* in, const T* mask, int64_t n);
// d_in (n) = d_out (n) * mask (n), overwritten.
template <typename T>
void dropout_backward(T* d_in, const T* d_out, const T* mask, int64_t n);

class Dropout : public Layer {
 public:
  explicit Dropout(const DropoutOptions& options = {});  // throws on invalid options

  std::string kind() const override { return "Dropout"; }
  Shape output_shape(const Shape& in) const override { return in; }
  void forward(Tensor& out, const Tensor& in, Mode mode) override;
  // After a training forward: d_in = d_out * mask; after an eval forward: d_in = d_out.
  void backward(Tensor& d_in, const Tensor& d_out, const Tensor& in, const Tensor& out) override;
  std::string describe() const override;  // "Dropout(p=0.5)"
  int64_t flops(const Shape& in) const override;
  bool reshapes(Mode mode) const override { return mode == Mode::kEval; }  // the identity

  const DropoutOptions& options() const { return options_; }
  Rng& rng() { return rng_; }
  // The mask of the last training forward (shape of its input): 0 or 1 / (1 - p).
  const Tensor& mask() const { return mask_; }

 private:
  DropoutOptions options_;
  Rng rng_;
  Tensor mask_;
  bool masked_ = false;  // whether the last forward was in training mode
};

}  // namespace scratchnet
