// fixtures.h — tiny MNIST-format data sets made on the fly.
//
// make_idx_set writes the four IDX files of a learnable toy set: an image of class c is a
// bright 6x6 square at one of ten fixed positions (one per class) on a noisy background,
// so a small model reaches high accuracy in a few hundred steps.
#pragma once

#include <cstdint>
#include <string>

#include "scratchnet/data/idx.h"
#include "scratchnet/rng.h"

namespace scratchnet::testing {

inline IdxArray toy_images(const std::vector<uint8_t>& labels, int64_t side, uint64_t seed) {
  Rng rng(seed);
  IdxArray images{{static_cast<int64_t>(labels.size()), side, side}, {}};
  images.data.resize(labels.size() * side * side);
  for (size_t i = 0; i < labels.size(); ++i) {
    uint8_t* img = images.data.data() + i * side * side;
    for (int64_t p = 0; p < side * side; ++p) img[p] = static_cast<uint8_t>(rng.below(60));
    int64_t c = labels[i];
    int64_t y0 = (c / 5) * (side / 2) + 1 + static_cast<int64_t>(rng.below(3));
    int64_t x0 = (c % 5) * (side / 5) + static_cast<int64_t>(rng.below(2));
    for (int64_t y = y0; y < std::min(side, y0 + 6); ++y)
      for (int64_t x = x0; x < std::min(side, x0 + 6); ++x)
        img[y * side + x] = static_cast<uint8_t>(200 + rng.below(56));
  }
  return images;
}

// Writes train-/t10k- images and labels (raw IDX) of a toy set into `dir`.
inline void make_idx_set(const std::string& dir, int64_t n_train, int64_t n_test, int64_t side = 28,
                         uint64_t seed = 1) {
  Rng rng(seed);
  auto write = [&](const std::string& prefix, int64_t n, uint64_t s) {
    std::vector<uint8_t> labels(n);
    for (auto& l : labels) l = static_cast<uint8_t>(rng.below(10));
    write_idx(dir + "/" + prefix + "-images-idx3-ubyte", toy_images(labels, side, s));
    write_idx(dir + "/" + prefix + "-labels-idx1-ubyte", IdxArray{{n}, labels});
  };
  write("train", n_train, seed + 1);
  write("t10k", n_test, seed + 2);
}

}  // namespace scratchnet::testing
