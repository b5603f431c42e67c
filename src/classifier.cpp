// classifier.cpp — digits to class probabilities with a trained model (classifier.h).
#include "scratchnet/classifier.h"

#include <algorithm>
#include <numeric>

#include "scratchnet/check.h"
#include "scratchnet/train/evaluate.h"

namespace scratchnet {

Classifier::Classifier(LoadedModel loaded, const std::string& source) : loaded_(std::move(loaded)) {
  Sequential& m = loaded_.model;
  const Shape in = m.input_shape();
  SN_CHECK(in.size() == 3 && in[0] == 1 && in[1] == in[2],
           "{}: classifying reads one-channel square images, but the model is built for {}", source,
           shape_str(in));
  const Shape out = m.output_shape(m.size() - 1);
  SN_CHECK(out.size() == 1, "{}: the model's output {} is not (N, classes)", source,
           shape_str(out));
  side_ = in[1];
  classes_ = out[0];
  style_ = {.size = side_, .box = std::max<int64_t>(1, std::lround(side_ * 20 / 28.0))};
  last_kind_ = m.layer(m.size() - 1).kind();
  batch_set_.source = source;
  batch_set_.height = batch_set_.width = side_;
}

std::string Classifier::class_name(int64_t c) const {
  const auto& names = loaded_.info.class_names;
  return c < static_cast<int64_t>(names.size()) ? names[c] : std::to_string(c);
}

void Classifier::probabilities(std::vector<double>& probs, std::span<const uint8_t> digits,
                               int64_t max_batch) {
  const int64_t pixels = side_ * side_;
  SN_CHECK(digits.size() % pixels == 0, "{} bytes are not whole {}x{} digits", digits.size(), side_,
           side_);
  SN_CHECK(max_batch > 0, "max_batch must be positive, got {}", max_batch);
  const int64_t n = static_cast<int64_t>(digits.size()) / pixels;
  probs.resize(n * classes_);
  if (static_cast<int64_t>(order_.size()) < std::min(n, max_batch)) {
    order_.resize(std::min(n, max_batch));
    std::iota(order_.begin(), order_.end(), 0);
  }
  for (int64_t b = 0; b < n; b += max_batch) {
    const int64_t count = std::min(max_batch, n - b);
    batch_set_.images.assign(digits.begin() + b * pixels, digits.begin() + (b + count) * pixels);
    batch_set_.labels.assign(count, 0);
    make_batch(batch_, batch_set_, order_.data(), count, loaded_.info.preprocess);
    const Tensor& out = loaded_.model.forward(batch_, Mode::kEval);  // (count, K)
    for (int64_t i = 0; i < count; ++i)
      output_probabilities(probs.data() + (b + i) * classes_, out.data() + i * classes_, classes_,
                           last_kind_);
  }
}

std::vector<int64_t> top_classes(const double* p, int64_t classes, int64_t k) {
  std::vector<int64_t> ranked(classes);
  std::iota(ranked.begin(), ranked.end(), 0);
  std::stable_sort(ranked.begin(), ranked.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  ranked.resize(std::min(k, classes));
  return ranked;
}

}  // namespace scratchnet
