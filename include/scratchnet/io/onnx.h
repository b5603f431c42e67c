// onnx.h — export a trained model to ONNX, so other runtimes (onnxruntime, OpenCV's DNN
// module, TensorRT, ...) can run it.
//
// The file is an ONNX ModelProto (IR version 7, default domain opset 13), written with the
// classes protobuf generates from onnx.proto:
//
//   graph input   "input"   float32 (batch, C, H, W) — the model's input shape with a dynamic
//                           first dimension named "batch". It is the PREPROCESSED image, as
//                           make_batch produces it: x = pixel / 255, then (x - mean) / std when
//                           the model file's preprocessing normalises. The preprocessing is not
//                           part of the graph; metadata_props record it (below).
//   graph output  "logits"  float32 (batch, K) — the output of the model's last layer (its
//                           logits; probabilities or log-probabilities when the model ends in
//                           Softmax or LogSoftmax).
//
// Each layer becomes the node that computes what it computes in Mode::kEval:
//
//   Conv2d        Conv (kernel_shape, strides, pads; bias input only when the layer has one)
//   MaxPool2d     MaxPool (kernel_shape, strides, pads; ceil_mode 0)
//   AvgPool2d     AveragePool (kernel_shape, strides, count_include_pad 1); with padding, a
//                 Pad node (zeros) in front and no pads on the pool: the same numbers, the
//                 divisor always K*K, and it runs the same in runtimes that ignore
//                 count_include_pad (OpenCV 4.6 does)
//   ReLU, Tanh, Sigmoid   Relu, Tanh, Sigmoid;  LeakyReLU   LeakyRelu (alpha = negative_slope)
//   Flatten       Flatten (axis 1)
//   Linear        Gemm (transB 1: weight stays (F_out, F_in); bias input only when present)
//   BatchNorm2d, BatchNorm1d
//                 BatchNormalization in inference mode (scale, B, running mean and variance,
//                 epsilon); on (N, F) and (N, F, L) inputs as on images
//   Dropout       nothing: it is the identity in eval mode (an Identity node only when no
//                 other node would produce "logits")
//   Softmax, LogSoftmax   Softmax, LogSoftmax (axis 1)
//
// Initialisers hold every parameter and running statistic under its state_dict name
// ("0.weight", "1.running_mean"), float32 little-endian in raw_data; num_batches_tracked is
// left out (inference does not use it). Every intermediate tensor ("0.out", "1.out", ...) has
// a value_info with its shape.
//
// metadata_props (each value a string):
//   preprocess    the model file's preprocessing, as JSON: {"scale": 1/255, "normalize": bool,
//                 "mean": m, "std": s}
//   class_names   JSON array, class k names output column k
//   spec          the architecture (model_spec.h)
//   dataset, recipe, metrics, origin   as in the model file, when it has them
#pragma once

#include <cstdint>
#include <string>

#include "scratchnet/io/model_file.h"
#include "scratchnet/model.h"

namespace scratchnet {

inline constexpr int64_t kOnnxOpset = 13;
inline constexpr int64_t kOnnxIrVersion = 7;

// What an export wrote, for a report line.
struct OnnxExportSummary {
  int64_t nodes = 0;
  int64_t initializers = 0;
  int64_t bytes = 0;  // size of the file
};

// The ONNX ModelProto of a built model, serialised. Throws scratchnet::Error for a model that
// is not built, is empty or holds a layer kind with no ONNX equivalent (naming it and its
// index).
std::string onnx_model_bytes(Sequential& model, const ModelInfo& info);

// Writes onnx_model_bytes to `path` through write_file_atomic: a crash or a full disk never
// leaves a half-written file, and errors name `path`.
OnnxExportSummary export_onnx(const std::string& path, Sequential& model, const ModelInfo& info);

}  // namespace scratchnet
