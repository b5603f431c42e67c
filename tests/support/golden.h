// golden.h — loading PyTorch golden files and comparing tensors against them.
//
// Tolerance. A tensor `got` matches the reference `want` when
//
//     rel_err = max_i |got_i - want_i| / max(max_i |want_i|, kTinyScale)  <=  rtol
//
// i.e. the worst absolute error measured against the largest magnitude in the reference.
// Elements near zero are judged on the tensor's scale rather than their own, so a correct
// kernel whose float32 sums cancel to a tiny value does not fail. A NaN or infinity anywhere
// in `got` (where `want` is finite) counts as an infinite error. Shapes must match exactly.
// On failure the message names the tensor, the worst element's index and both values.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "scratchnet/io/safetensors.h"
#include "scratchnet/tensor.h"

namespace scratchnet::testing {

inline constexpr double kTinyScale = 1e-12;

struct TensorDiff {
  double rel_err = 0;      // max |got - want| / max(scale, kTinyScale)
  double max_abs_err = 0;  // max |got - want|
  double scale = 0;        // max |want|
  int64_t worst = -1;      // flat index of the largest |got - want|, -1 when all equal
  float got_value = 0, want_value = 0;
};

// "[1, 0, 2, 3]" for a flat index into a row-major tensor of `shape`.
inline std::string index_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  std::ostringstream s;
  s << "[";
  for (size_t d = 0; d < idx.size(); ++d) s << (d ? ", " : "") << idx[d];
  s << "]";
  return s.str();
}

// Both tensors must have the same number of elements.
inline TensorDiff diff_tensors(const Tensor& got, const Tensor& want) {
  TensorDiff diff;
  for (int64_t i = 0; i < want.numel(); ++i) {
    diff.scale = std::max(diff.scale, std::abs(static_cast<double>(want[i])));
  }
  for (int64_t i = 0; i < want.numel(); ++i) {
    double err = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    if (!std::isfinite(err)) err = std::numeric_limits<double>::infinity();
    if (diff.worst < 0 || err > diff.max_abs_err) {
      diff.max_abs_err = err;
      diff.worst = i;
      diff.got_value = got[i];
      diff.want_value = want[i];
    }
  }
  diff.rel_err = diff.max_abs_err / std::max(diff.scale, kTinyScale);
  return diff;
}

// Checks shape and values; `what` names the case and tensor in the failure message
// ("conv2d_basic: d_weight"). Stores the relative error in *rel_err when given.
inline ::testing::AssertionResult tensors_close(const std::string& what, const Tensor& got,
                                                const Tensor& want, double rtol,
                                                double* rel_err = nullptr) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(got.shape())
                                         << ", expected " << shape_str(want.shape());
  }
  TensorDiff d = diff_tensors(got, want);
  if (rel_err) *rel_err = d.rel_err;
  if (d.rel_err <= rtol) return ::testing::AssertionSuccess();
  std::ostringstream s;
  s.precision(9);
  s << what << ": relative error " << d.rel_err << " > " << rtol << " (max abs error "
    << d.max_abs_err << ", scale " << d.scale << ") at " << index_str(want.shape(), d.worst)
    << ": got " << d.got_value << ", expected " << d.want_value;
  return ::testing::AssertionFailure() << s.str();
}

// The tensor `name` of a golden file; throws std::runtime_error naming the file when absent.
inline const Tensor& golden_tensor(const SafeTensors& file, const std::string& name,
                                   const std::string& path) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) {
    throw std::runtime_error(path + ": no tensor named \"" + name + "\"");
  }
  return it->second;
}

// The metadata value `key` of a golden file; throws when absent.
inline const std::string& golden_meta(const SafeTensors& file, const std::string& key,
                                      const std::string& path) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) {
    throw std::runtime_error(path + ": no metadata key \"" + key + "\"");
  }
  return it->second;
}

// Sorted paths of the *.safetensors files in `dir`; empty when `dir` does not exist.
inline std::vector<std::string> list_goldens(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".safetensors") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace scratchnet::testing
