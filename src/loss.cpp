#include "scratchnet/loss.h"

#include <algorithm>
#include <cmath>

#include "scratchnet/check.h"

namespace scratchnet {

// The losses reduce a batch to one number and are O(N * K), far below the layers' cost, so
// they run on the calling thread; the result is then trivially independent of thread count.

template <typename T>
double cross_entropy_loss_kernel(T* d_logits, const T* logits, const int32_t* labels, int64_t n,
                                 int64_t k, double label_smoothing) {
  // target[j] = smooth + (j == label ? hit : 0); sums to 1.
  const double smooth = label_smoothing / static_cast<double>(k);
  const double hit = 1.0 - label_smoothing;
  const double inv_n = 1.0 / static_cast<double>(n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* row = logits + i * k;  // (K)
    const int32_t y = labels[i];
    // With z = logits - max (every z <= 0, one z = 0): log_softmax = z - log(sum exp z).
    const double max = static_cast<double>(*std::max_element(row, row + k));
    double sum_exp = 0, sum_z = 0;
    for (int64_t j = 0; j < k; ++j) {
      double z = static_cast<double>(row[j]) - max;
      sum_exp += std::exp(z);
      sum_z += z;
    }
    const double lse = std::log(sum_exp);  // in [0, log K]
    const double log_p_y = static_cast<double>(row[y]) - max - lse;
    // -sum_j target[j] * log_p[j], where sum_j log_p[j] = sum_z - K * lse.
    double loss = -hit * log_p_y;
    if (label_smoothing != 0) loss -= smooth * (sum_z - static_cast<double>(k) * lse);
    total += loss;
    if (d_logits) {
      T* d_row = d_logits + i * k;  // (K)
      for (int64_t j = 0; j < k; ++j) {
        double p = std::exp(static_cast<double>(row[j]) - max - lse);
        d_row[j] = static_cast<T>((p - smooth) * inv_n);
      }
      double p_y = std::exp(log_p_y);
      d_row[y] = static_cast<T>((p_y - smooth - hit) * inv_n);
    }
  }
  return total * inv_n;
}

template <typename T>
double nll_loss_kernel(T* d_log_probs, const T* log_probs, const int32_t* labels, int64_t n,
                       int64_t k) {
  const double inv_n = 1.0 / static_cast<double>(n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total -= static_cast<double>(log_probs[i * k + labels[i]]);
  if (d_log_probs) {
    std::fill(d_log_probs, d_log_probs + n * k, T(0));
    for (int64_t i = 0; i < n; ++i) d_log_probs[i * k + labels[i]] = static_cast<T>(-inv_n);
  }
  return total * inv_n;
}

template <typename T>
double mse_loss_kernel(T* d_pred, const T* pred, const T* target, int64_t numel) {
  double total = 0;
  for (int64_t i = 0; i < numel; ++i) {
    double diff = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    total += diff * diff;
  }
  if (d_pred) {
    const double scale = 2.0 / static_cast<double>(numel);
    for (int64_t i = 0; i < numel; ++i) {
      T diff = pred[i] - target[i];
      d_pred[i] = static_cast<T>(scale * static_cast<double>(diff));
    }
  }
  return total / static_cast<double>(numel);
}

template double cross_entropy_loss_kernel<float>(float*, const float*, const int32_t*, int64_t,
                                                 int64_t, double);
template double cross_entropy_loss_kernel<double>(double*, const double*, const int32_t*, int64_t,
                                                  int64_t, double);
template double nll_loss_kernel<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template double nll_loss_kernel<double>(double*, const double*, const int32_t*, int64_t, int64_t);
template double mse_loss_kernel<float>(float*, const float*, const float*, int64_t);
template double mse_loss_kernel<double>(double*, const double*, const double*, int64_t);

namespace {

// Checks a (N, K) score tensor against its labels, for cross_entropy_loss and nll_loss.
void check_class_scores(const char* fn, const char* what, const Tensor& scores,
                        std::span<const int32_t> labels, const Tensor* grad) {
  SN_CHECK(scores.ndim() == 2, "{}: expects {} of shape (N, K), got shape {}", fn, what,
           shape_str(scores.shape()));
  const int64_t n = scores.dim(0), k = scores.dim(1);
  SN_CHECK(k > 0, "{}: {} have 0 classes", fn, what);
  SN_CHECK(n > 0, "{}: the batch is empty ({} of shape {})", fn, what, shape_str(scores.shape()));
  SN_CHECK(static_cast<int64_t>(labels.size()) == n, "{}: got {} labels for {} rows of {} {}", fn,
           labels.size(), n, what, shape_str(scores.shape()));
  for (size_t i = 0; i < labels.size(); ++i)
    SN_CHECK(labels[i] >= 0 && labels[i] < k,
             "{}: label {} at index {} is out of range for {} classes", fn, labels[i], i, k);
  SN_CHECK(grad != &scores, "{}: the gradient tensor must not be the {} tensor", fn, what);
}

}  // namespace

float cross_entropy_loss(const Tensor& logits, std::span<const int32_t> labels, Tensor* d_logits,
                         const CrossEntropyOptions& options) {
  const float ls = options.label_smoothing;
  SN_CHECK(ls >= 0.0f && ls <= 1.0f,
           "cross_entropy_loss: label_smoothing must be in [0, 1], got {}", ls);
  check_class_scores("cross_entropy_loss", "logits", logits, labels, d_logits);
  if (d_logits) d_logits->resize(logits.shape());
  return static_cast<float>(cross_entropy_loss_kernel<float>(
      d_logits ? d_logits->data() : nullptr, logits.data(), labels.data(), logits.dim(0),
      logits.dim(1), static_cast<double>(ls)));
}

float nll_loss(const Tensor& log_probs, std::span<const int32_t> labels, Tensor* d_log_probs) {
  check_class_scores("nll_loss", "log_probs", log_probs, labels, d_log_probs);
  if (d_log_probs) d_log_probs->resize(log_probs.shape());
  return static_cast<float>(nll_loss_kernel<float>(d_log_probs ? d_log_probs->data() : nullptr,
                                                   log_probs.data(), labels.data(),
                                                   log_probs.dim(0), log_probs.dim(1)));
}

float mse_loss(const Tensor& pred, const Tensor& target, Tensor* d_pred) {
  SN_CHECK(pred.shape() == target.shape(), "mse_loss: pred has shape {} but target has shape {}",
           shape_str(pred.shape()), shape_str(target.shape()));
  SN_CHECK(!pred.empty(), "mse_loss: pred is empty (shape {})", shape_str(pred.shape()));
  SN_CHECK(d_pred != &pred && d_pred != &target,
           "mse_loss: the gradient tensor must not be pred or target");
  if (d_pred) d_pred->resize(pred.shape());
  return static_cast<float>(mse_loss_kernel<float>(d_pred ? d_pred->data() : nullptr, pred.data(),
                                                   target.data(), pred.numel()));
}

double l1_penalty(const std::vector<NamedParameter>& weights, float l1) {
  SN_CHECK(l1 >= 0, "l1_penalty: l1 must be at least 0, got {}", l1);
  double sum = 0;
  for (const NamedParameter& p : weights) {
    const float* w = p.param->value.data();
    float* g = p.param->grad.data();
    SN_CHECK(p.param->grad.shape() == p.param->value.shape(),
             "l1_penalty: {} has a gradient of shape {} for a value of shape {}", p.name,
             shape_str(p.param->grad.shape()), shape_str(p.param->value.shape()));
    for (int64_t i = 0; i < p.param->value.numel(); ++i) {
      sum += std::fabs(static_cast<double>(w[i]));
      g[i] += w[i] > 0 ? l1 : w[i] < 0 ? -l1 : 0.0f;
    }
  }
  return static_cast<double>(l1) * sum;
}

}  // namespace scratchnet
