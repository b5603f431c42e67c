// safetensors.h — read and write the safetensors format (as the Python `safetensors`
// package and Hugging Face do).
//
// File layout: an 8-byte little-endian header length L, then L bytes of JSON:
//   {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string value>", ...}}
// then the raw little-endian data; offsets are relative to the end of the header.
// Tensors are read as float32: F32 as is; F64, I64, I32 and U8 are converted (so PyTorch's
// int64 num_batches_tracked loads). Anything else is rejected. Every header field is
// checked against the file size before anything is allocated; errors name the file and the
// problem. Writing goes to "<path>.tmp" and is renamed over <path>, so a crash never leaves
// a half-written file.
#pragma once

#include <map>
#include <string>

#include "scratchnet/tensor.h"

namespace scratchnet {

struct SafeTensors {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

SafeTensors read_safetensors(const std::string& path);
// Writes every tensor as F32, names sorted, data 8-byte aligned.
void write_safetensors(const std::string& path, const SafeTensors& file);

}  // namespace scratchnet
