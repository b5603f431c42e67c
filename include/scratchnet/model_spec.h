// model_spec.h — models described in JSON, so users add their own without recompiling.
//
//   {
//     "input": [1, 28, 28],
//     "layers": [
//       {"type": "Conv2d", "out_channels": 32, "kernel": 3},
//       {"type": "ReLU"},
//       {"type": "MaxPool2d", "kernel": 2},
//       {"type": "Flatten"},
//       {"type": "Linear", "out_features": 10}
//     ]
//   }
//
// "type" is a layer kind (layer_kinds()); the other keys are that layer's option fields,
// spelled as in its options struct (Conv2dOptions: in_channels, out_channels, kernel, stride,
// padding, bias). The input size of a layer (in_channels, in_features, num_features) may be
// left out: it is inferred from the shape that reaches the layer. Written out, it is always
// present. Unknown types, unknown or ill-typed options and impossible shapes are errors
// naming the source, the layer index and the problem.
#pragma once

#include <string>
#include <vector>

#include "scratchnet/model.h"

namespace scratchnet {

// Builds (and shape-checks) the model a spec describes. `source` names it in messages.
Sequential model_from_spec(const std::string& json_text, const std::string& source = "model spec");
// Reads a spec file and builds its model.
Sequential load_model_spec(const std::string& path);
// The spec of a built model, as one JSON object (input and every layer's options).
std::string model_to_spec(const Sequential& model);

std::vector<std::string> layer_kinds();

}  // namespace scratchnet
