// classifier.h — a trained model put to work: pictures of digits in, class probabilities out.
//
//   Classifier c(load_model("runs/basic/model.safetensors"), "runs/basic/model.safetensors");
//   std::vector<uint8_t> digit;                 // (28, 28), MNIST-style
//   to_mnist_style(digit, read_image("7.png"), c.style());
//   std::vector<double> probs;                  // (1, classes)
//   c.probabilities(probs, digit);
//   int64_t best = top_classes(probs.data(), c.classes(), 1)[0];
//
// The model must take one-channel square images (1, S, S) and give one row of scores per
// image (N, K); the constructor says otherwise, naming the model. Digits are uint8
// (n, S, S), 0 background and 255 full ink, exactly as in MNIST's IDX files: the model file's
// recorded preprocessing is applied here. The scores become probabilities as the last layer
// implies: as they are after Softmax, exp after LogSoftmax, a softmax of the logits otherwise
// (in double, like torch.softmax(logits.double(), 1)).
//
// A Classifier is not safe to use from several threads at once (the model reuses its
// buffers); a server serialises the calls.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "scratchnet/data/image.h"
#include "scratchnet/io/model_file.h"

namespace scratchnet {

class Classifier {
 public:
  Classifier(LoadedModel loaded, const std::string& source);

  int64_t side() const { return side_; }        // S: digits are (S, S)
  int64_t classes() const { return classes_; }  // K
  // How pictures become digits for this model: a 20/28 box in an S x S field.
  const MnistStyle& style() const { return style_; }
  // The class's name from the model file ("7", "T-shirt/top"), or its index.
  std::string class_name(int64_t c) const;
  const ModelInfo& info() const { return loaded_.info; }
  Sequential& model() { return loaded_.model; }

  // probs (n, K) for digits (n, S, S), n = digits.size() / S², in batches of up to
  // max_batch images (memory grows with it).
  void probabilities(std::vector<double>& probs, std::span<const uint8_t> digits,
                     int64_t max_batch = 1000);

 private:
  LoadedModel loaded_;
  int64_t side_ = 0, classes_ = 0;
  MnistStyle style_;
  std::string last_kind_;       // the last layer's kind: Softmax, LogSoftmax or other
  Dataset batch_set_;           // the digits of one call, as a data set for make_batch
  Tensor batch_;                // (batch, 1, S, S)
  std::vector<int64_t> order_;  // 0, 1, 2, ...: the batch's images in order
};

// The k most likely classes of one row p (classes), most likely first; equal probabilities
// keep the lower index first.
std::vector<int64_t> top_classes(const double* p, int64_t classes, int64_t k);

}  // namespace scratchnet
