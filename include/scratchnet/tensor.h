// tensor.h — a dense float32 tensor with 64-byte aligned, contiguous storage.
//
// Layout is row-major; images are NCHW and feature batches NF, as in PyTorch. The dimension
// letters used in shape comments across the project:
//   N batch, C input channels, OC output channels, H/W input height/width,
//   OH/OW output height/width, K kernel size, F features.
// A Tensor owns its storage and copies deeply. resize() reuses storage when it is large
// enough, so buffers planned once are never reallocated in a training loop.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace scratchnet {

using Shape = std::vector<int64_t>;

// "(64, 1, 28, 28)"
std::string shape_str(const Shape& shape);
// Product of the dimensions; 1 for a scalar shape (). Throws on a negative dimension.
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape);                    // zero-filled
  Tensor(Shape shape, std::vector<float> values);  // values.size() must equal numel
  static Tensor full(Shape shape, float value);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept = default;
  Tensor& operator=(Tensor&& other) noexcept = default;

  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  bool empty() const { return numel_ == 0; }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  float& operator[](int64_t i) { return data_.get()[i]; }
  float operator[](int64_t i) const { return data_.get()[i]; }
  float* begin() { return data(); }
  float* end() { return data() + numel_; }
  const float* begin() const { return data(); }
  const float* end() const { return data() + numel_; }

  // New shape with the same number of elements (contents unchanged).
  void reshape(Shape shape);
  // New shape of any size; keeps storage if it is large enough. Contents are unspecified.
  void resize(Shape shape);
  void fill(float value);
  void zero() { fill(0.0f); }
  std::vector<float> to_vector() const { return {begin(), end()}; }

 private:
  struct AlignedFree {
    void operator()(float* p) const;
  };
  Shape shape_;
  int64_t numel_ = 0;
  int64_t capacity_ = 0;
  std::unique_ptr<float[], AlignedFree> data_;
};

// Throws scratchnet::Error "<what>: expected shape <want>, got <got>" when they differ.
void check_shape(const Tensor& t, const Shape& want, const char* what);

}  // namespace scratchnet
