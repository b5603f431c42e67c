// loss.h — loss functions and their gradients: cross-entropy (softmax and negative
// log-likelihood fused), negative log-likelihood, and mean squared error.
//
//   logits, log_probs  (N, K)   one row per sample, K classes
//   labels             (N)      class indices in [0, K)
//   pred, target       any shape, the two equal
//   weights            named parameters (l1_penalty: the weights Recipe::l1 applies to)
//
// Each follows torch.nn.functional.<name> with reduction='mean' and returns the mean loss,
// accumulated in double. A non-null gradient tensor is resized to the input's shape and
// OVERWRITTEN with d(mean loss)/d(input), ready to hand to Sequential::backward. Errors (wrong
// ranks or sizes, a label out of range, an empty batch) throw scratchnet::Error with a message
// that starts with the function's name. Unlike PyTorch there is no ignore_index, and an empty
// batch is an error rather than NaN.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "scratchnet/layer.h"
#include "scratchnet/tensor.h"

namespace scratchnet {

struct CrossEntropyOptions {
  // In [0, 1]. The target distribution becomes (1 - label_smoothing) * onehot(label) +
  // label_smoothing / K, as torch.nn.functional.cross_entropy(label_smoothing=...).
  float label_smoothing = 0.0f;
};

// Mean over the batch of -sum_k target[n, k] * log_softmax(logits)[n, k]; the softmax uses the
// row maximum (log-sum-exp), so logits of +-1000 give exact results.
// d_logits (N, K) = (softmax(logits) - target) / N.
float cross_entropy_loss(const Tensor& logits, std::span<const int32_t> labels,
                         Tensor* d_logits = nullptr, const CrossEntropyOptions& options = {});

// Mean over the batch of -log_probs[n, labels[n]] (log_probs is usually a LogSoftmax output).
// d_log_probs (N, K) is -1/N at each sample's label and 0 elsewhere.
float nll_loss(const Tensor& log_probs, std::span<const int32_t> labels,
               Tensor* d_log_probs = nullptr);

// Mean over all elements of (pred - target)^2. d_pred = 2 * (pred - target) / numel.
float mse_loss(const Tensor& pred, const Tensor& target, Tensor* d_pred = nullptr);

// The L1 penalty l1 * sum |w| over every element of `weights` (summed in double), as
// `l1 * sum(p.abs().sum() for p in weights)` added to a PyTorch loss; ADDS its gradient
// l1 * sign(w) (0 where w is 0, as torch.sign) into each weight's grad. l1 >= 0.
double l1_penalty(const std::vector<NamedParameter>& weights, float l1);

// Reference kernels, instantiated for float and double (the gradient check runs in double).
// They trust their arguments (the functions above check them): labels in [0, k), n, k >= 1.
// Each returns the mean loss and, when the gradient pointer is not null, overwrites it.
// logits / log_probs / gradients are (n, k) row-major; pred, target, d_pred hold numel values.
template <typename T>
double cross_entropy_loss_kernel(T* d_logits, const T* logits, const int32_t* labels, int64_t n,
                                 int64_t k, double label_smoothing);
template <typename T>
double nll_loss_kernel(T* d_log_probs, const T* log_probs, const int32_t* labels, int64_t n,
                       int64_t k);
template <typename T>
double mse_loss_kernel(T* d_pred, const T* pred, const T* target, int64_t numel);

}  // namespace scratchnet
