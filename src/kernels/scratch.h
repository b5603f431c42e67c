// scratch.h — the kernels' working buffers (private to src/kernels): each kernel keeps its
// own thread_local ones, so they are allocated once per thread and reused.
#pragma once

#include <cstdint>
#include <new>

namespace scratchnet {

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { release(); }

  // At least n floats, 64-byte aligned; grows, never shrinks (a larger request drops the
  // values held).
  float* get(int64_t n) {
    if (n > size_) {
      release();
      data_ = static_cast<float*>(
          ::operator new(static_cast<size_t>(n) * sizeof(float), std::align_val_t(64)));
      size_ = n;
    }
    return data_;
  }
  int64_t size() const { return size_; }

 private:
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t(64));
    data_ = nullptr;
    size_ = 0;
  }
  float* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace scratchnet
