// evaluate.h — loss, accuracy, the confusion matrix and per-item predictions of a model on a
// data set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/model.h"

namespace scratchnet {

struct EvalResult {
  int64_t count = 0;
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;  // fraction correct, in [0, 1]
  int64_t classes = 0;
  std::vector<int64_t> confusion;  // (classes, classes): [true label][predicted]
  std::vector<int32_t> predicted;  // (count): the predicted class of each item, in order
  // (count): the predicted class's probability, as torch.softmax(output, 1).max(1): the output
  // as it is after a last Softmax layer, exp of it after LogSoftmax, its softmax otherwise.
  std::vector<float> confidence;

  int64_t correct() const;
  // Fraction of class c's items predicted as c (NaN when the set has none of c).
  double class_accuracy(int64_t c) const;
  std::string to_json(const std::vector<std::string>& class_names) const;
};

// Runs the model in eval mode over the whole set in batches. The model's output must be
// (N, K) with K >= every label; the error names the set otherwise. Memory grows with the
// batch size (two activations of `batch_size` images); the default keeps evaluation during
// training within what training itself uses.
EvalResult evaluate(Sequential& model, const Dataset& set, const Preprocess& preprocess,
                    int64_t batch_size = 256);

// The predicted class of each row of logits (N, K): the first maximum.
void argmax_rows(std::vector<int32_t>& out, const Tensor& logits);

// One output row (k) of a model whose last layer is of kind `last_kind`, as probabilities p (k):
// the row as it is after Softmax, exp of it after LogSoftmax, its softmax otherwise (in double,
// like torch.softmax(logits.double(), 1)).
void output_probabilities(double* p, const float* row, int64_t k, const std::string& last_kind);

}  // namespace scratchnet
