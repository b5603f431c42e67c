#include "scratchnet/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"

namespace scratchnet {

namespace {
constexpr size_t kAlign = 64;

float* aligned_floats(int64_t n) {
  if (n == 0) return nullptr;
  size_t bytes = (static_cast<size_t>(n) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  SN_CHECK(p != nullptr, "out of memory allocating a tensor of {} floats", n);
  return static_cast<float*>(p);
}
}  // namespace

void Tensor::AlignedFree::operator()(float* p) const { std::free(p); }

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    SN_CHECK(d >= 0, "shape {} has a negative dimension", shape_str(shape));
    n *= d;
  }
  return n;
}

Tensor::Tensor(Shape shape) {
  resize(std::move(shape));
  zero();
}

Tensor::Tensor(Shape shape, std::vector<float> values) {
  resize(std::move(shape));
  SN_CHECK(static_cast<int64_t>(values.size()) == numel_,
           "tensor of shape {} needs {} values, got {}", shape_str(shape_), numel_, values.size());
  if (numel_) std::memcpy(data(), values.data(), numel_ * sizeof(float));
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t;
  t.resize(std::move(shape));
  t.fill(value);
  return t;
}

Tensor::Tensor(const Tensor& other) { *this = other; }

Tensor& Tensor::operator=(const Tensor& other) {
  if (this == &other) return *this;
  resize(other.shape_);
  if (numel_) std::memcpy(data(), other.data(), numel_ * sizeof(float));
  return *this;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  SN_CHECK(j >= 0 && j < n, "dimension {} is out of range for shape {}", i, shape_str(shape_));
  return shape_[j];
}

void Tensor::reshape(Shape shape) {
  SN_CHECK(shape_numel(shape) == numel_, "cannot reshape {} to {}: sizes differ", shape_str(shape_),
           shape_str(shape));
  shape_ = std::move(shape);
}

void Tensor::resize(Shape shape) {
  int64_t n = shape_numel(shape);
  if (n > capacity_) {
    data_.reset(aligned_floats(n));
    capacity_ = n;
  }
  shape_ = std::move(shape);
  numel_ = n;
}

void Tensor::fill(float value) {
  float* p = data();  // large tensors (a gradient zeroed every step) over the threads
  parallel_for(numel_, parallel_grain(1),
               [&](int64_t begin, int64_t end) { std::fill(p + begin, p + end, value); });
}

void check_shape(const Tensor& t, const Shape& want, const char* what) {
  SN_CHECK(t.shape() == want, "{}: expected shape {}, got {}", what, shape_str(want),
           shape_str(t.shape()));
}

}  // namespace scratchnet
