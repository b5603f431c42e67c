// quantize.h — post-training int8 quantisation of a trained float model.
//
//   LoadedModel m = load_model("model.safetensors");
//   Sequential q = quantize_int8(m.model, splits.train, m.info.preprocess);
//   const Tensor& logits = q.forward(x, Mode::kEval);   // the same model, int8 inside
//   save_model("model-int8.safetensors", q, m.info);     // loads like any model file
//
// Every Conv2d and Linear becomes a Conv2dInt8 / LinearInt8 (int8_weights.h); a BatchNorm2d
// right after a Conv2d, or a BatchNorm1d right after a Linear, is folded into its weights
// and bias first (w' = w * g, b' = (b - running_mean) * g + beta, g = gamma / sqrt(running_var
// + eps)). Weights get one symmetric scale per output, max |w'| / 127. Each such layer's input
// gets a scale and zero point from the least and greatest value it takes on the calibration
// images (the range widened to hold 0): s = (max - min) / 255, z = round(-min / s). Every
// other layer is kept as it is, in float.
#pragma once

#include <cstdint>

#include "scratchnet/data/dataset.h"
#include "scratchnet/model.h"

namespace scratchnet {

struct QuantizeOptions {
  int64_t calibration_images = 1000;  // drawn at random from the set (all of it if smaller)
  int64_t batch_size = 256;
  uint64_t seed = 0;  // which images
};

// `model` must be built and its input shape the set's; it is run in eval mode, not changed.
Sequential quantize_int8(Sequential& model, const Dataset& calibration,
                         const Preprocess& preprocess, const QuantizeOptions& options = {});

}  // namespace scratchnet
