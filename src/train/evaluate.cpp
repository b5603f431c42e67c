#include "scratchnet/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "scratchnet/check.h"
#include "scratchnet/data/loader.h"
#include "scratchnet/loss.h"

namespace scratchnet {

int64_t EvalResult::correct() const {
  int64_t n = 0;
  for (int64_t c = 0; c < classes; ++c) n += confusion[c * classes + c];
  return n;
}

double EvalResult::class_accuracy(int64_t c) const {
  int64_t total = 0;
  for (int64_t p = 0; p < classes; ++p) total += confusion[c * classes + p];
  return total ? static_cast<double>(confusion[c * classes + c]) / total : NAN;
}

std::string EvalResult::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json per_class = nlohmann::json::array();
  for (int64_t c = 0; c < classes; ++c) {
    double a = class_accuracy(c);
    per_class.push_back(
        {{"class",
          c < static_cast<int64_t>(class_names.size()) ? class_names[c] : std::to_string(c)},
         {"accuracy", std::isnan(a) ? nlohmann::json(nullptr) : nlohmann::json(a)}});
  }
  nlohmann::json matrix = nlohmann::json::array();
  for (int64_t t = 0; t < classes; ++t)
    matrix.push_back(std::vector<int64_t>(confusion.begin() + t * classes,
                                          confusion.begin() + (t + 1) * classes));
  return nlohmann::json{{"count", count},       {"loss", loss},           {"accuracy", accuracy},
                        {"correct", correct()}, {"per_class", per_class}, {"confusion", matrix}}
      .dump();
}

void output_probabilities(double* p, const float* row, int64_t k, const std::string& last_kind) {
  if (last_kind == "Softmax") {
    std::copy(row, row + k, p);
    return;
  }
  const double m = last_kind == "LogSoftmax" ? 0.0 : *std::max_element(row, row + k);
  double sum = 0;
  for (int64_t j = 0; j < k; ++j) sum += p[j] = std::exp(double(row[j]) - m);
  if (last_kind != "LogSoftmax")
    for (int64_t j = 0; j < k; ++j) p[j] /= sum;
}

void argmax_rows(std::vector<int32_t>& out, const Tensor& logits) {
  int64_t n = logits.dim(0), k = logits.dim(1);
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * k;
    int32_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[best]) best = static_cast<int32_t>(j);
    out[i] = best;
  }
}

EvalResult evaluate(Sequential& model, const Dataset& set, const Preprocess& preprocess,
                    int64_t batch_size) {
  SN_CHECK(model.built(), "evaluate: the model is not built");
  SN_CHECK(set.sample_shape() == model.input_shape(),
           "{}: images of shape {} do not fit a model built for {}", set.source,
           shape_str(set.sample_shape()), shape_str(model.input_shape()));
  Shape out = model.output_shape(model.size() - 1);
  SN_CHECK(out.size() == 1, "evaluate: the model's output {} is not (N, classes)", shape_str(out));
  EvalResult r;
  r.classes = out[0];
  SN_CHECK(set.num_classes() <= r.classes,
           "{}: the data set has {} classes but the model predicts only {}", set.source,
           set.num_classes(), r.classes);
  r.confusion.assign(r.classes * r.classes, 0);
  BatchLoader loader(set, {.batch_size = batch_size, .shuffle = false, .preprocess = preprocess});
  loader.start_epoch(0);
  double loss_sum = 0;
  std::vector<int32_t> predicted;
  r.predicted.reserve(set.size());
  r.confidence.reserve(set.size());
  const std::string last = model.layer(model.size() - 1).kind();
  std::vector<double> probs(r.classes);
  while (const Batch* batch = loader.next()) {
    const Tensor& logits = model.forward(batch->images, Mode::kEval);
    int64_t n = logits.dim(0);
    loss_sum += static_cast<double>(cross_entropy_loss(logits, batch->labels)) * n;
    argmax_rows(predicted, logits);
    for (int64_t i = 0; i < n; ++i) {
      ++r.confusion[batch->labels[i] * r.classes + predicted[i]];
      output_probabilities(probs.data(), logits.data() + i * r.classes, r.classes, last);
      r.confidence.push_back(static_cast<float>(probs[predicted[i]]));
    }
    r.predicted.insert(r.predicted.end(), predicted.begin(), predicted.end());
    r.count += n;
  }
  r.loss = loss_sum / r.count;
  r.accuracy = static_cast<double>(r.correct()) / r.count;
  return r;
}

}  // namespace scratchnet
