// safetensors.h — read and write the safetensors format (as the Python `safetensors`
// package and Hugging Face do).
//
// File layout: an 8-byte little-endian header length L, then L bytes of JSON:
//   {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string value>", ...}}
// then the raw little-endian data; offsets are relative to the end of the header.
// Tensors are read as float32: F32 as is; F64, I64, I32, I8 and U8 are converted (so PyTorch's
// int64 num_batches_tracked loads). Anything else is rejected. Every header field is
// checked against the file size before anything is allocated; errors name the file and the
// problem. Writing goes to "<path>.tmp" and is renamed over <path>, so a crash never leaves
// a half-written file.
//
// Errors throw scratchnet::Error with one line that starts with the path, e.g.
//   "m.safetensors: cannot open: No such file or directory"
//   "m.safetensors: tensor \"0.weight\": data_offsets [0, 10] do not match shape (3, 3) of
//    F32 (36 bytes)"
// A little-endian host is assumed (checked at compile time).
#pragma once

#include <map>
#include <set>
#include <string>

#include "scratchnet/tensor.h"

namespace scratchnet {

struct SafeTensors {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"; empty when absent
  // Names of the tensors stored as I8: read, those that were I8 in the file; written, each
  // value must be an integer in [-128, 127] (an error names the tensor otherwise).
  std::set<std::string> int8;
};

// Reads the whole file, then checks: at least 8 bytes; L <= 100 MB and L <= file size - 8;
// the header is a JSON object; each entry has a string "dtype", a "shape" of non-negative
// integers and "data_offsets" [begin, end] with begin <= end <= data size, spanning exactly
// numel * dtype size bytes; no two buffers overlap (gaps are tolerated);
// "__metadata__", if present, is an object of strings. A 0-dim shape [] is a scalar.
SafeTensors read_safetensors(const std::string& path);
// Writes every tensor as F32 (I8 for those named in `int8`), names sorted, buffers contiguous from
// offset 0 in name order; the header is padded with spaces to a multiple of 8 bytes, so the data
// starts 8-byte aligned. "__metadata__" is written only when non-empty. The header is laid out as
// tools/goldens_common.py's save_safetensors lays it out (same key order, separators and
// \u escapes), so both write the same bytes for the same tensors and metadata (keys in
// sorted order). A tensor named "__metadata__", or a name or metadata that is not valid
// UTF-8, is an error; on any error <path> is left as it was and no "<path>.tmp" remains.
void write_safetensors(const std::string& path, const SafeTensors& file);

}  // namespace scratchnet
