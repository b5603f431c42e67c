// dataset.h — labelled image sets kept as bytes, found by name or by directory.
//
// Images stay as the 8-bit pixels they are stored in (MNIST's 60,000 training images take
// 47 MB); they become floats only a batch at a time, through Preprocess.
//
// A set is named ("mnist", "fashion-mnist": looked up as DATA/<name>/ under the data
// directory) or given as a directory holding the four IDX files
//   train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
//   t10k-labels-idx1-ubyte
// each raw or with a .gz suffix, or a directory of PNG/JPEG images, one folder per class
// (folder.h): a directory with class folders and none of those IDX files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/tensor.h"

namespace scratchnet {

struct Dataset {
  std::string source;  // where it came from, for messages
  int64_t channels = 1, height = 0, width = 0;
  std::vector<uint8_t> images;  // (size, channels, height, width)
  std::vector<int32_t> labels;  // (size), each in [0, class_names.size())
  std::vector<std::string> class_names;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  Shape sample_shape() const { return {channels, height, width}; }
  const uint8_t* image(int64_t i) const { return images.data() + i * channels * height * width; }
};

struct DatasetSplits {
  Dataset train, test;
};

// Images and labels from two IDX files. Checks that the image file is (N, H, W), the label
// file (N) with the same N, and every label < class_names.size(); the error names the file.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         const std::vector<std::string>& class_names);

// "mnist", "fashion-mnist" (under data_dir) or a directory of IDX files. For a directory
// the classes are "0".."9" unless its labels go higher (then "0".."max"). A directory of
// class folders is read by load_folder_dataset (folder.h) with `folder` options (the
// two-argument form uses the defaults: 20% of each class held out as test, seed 0).
struct FolderOptions;
DatasetSplits load_dataset(const std::string& name_or_dir, const std::string& data_dir);
DatasetSplits load_dataset(const std::string& name_or_dir, const std::string& data_dir,
                           const FolderOptions& folder);

// The names load_dataset knows, with their class names.
std::vector<std::string> dataset_names();
std::vector<std::string> dataset_class_names(const std::string& name);

// The first n items (n <= size), for quick runs and small tests.
Dataset take_first(const Dataset& set, int64_t n);
// Few-shot: the first n items of each class (n >= 1), in the set's order; an error names the
// first class with fewer than n items.
Dataset take_per_class(const Dataset& set, int64_t n);

// A training set split in two: the items held out for validation and the rest.
struct ValidationSplit {
  Dataset train, validation;      // each in the set's order
  std::vector<int64_t> held_out;  // the validation items' indices in the set, increasing
};
// Stratified and seeded, as sklearn's train_test_split(stratify=labels): of each class's n
// items, round(fraction * n) drawn by a Fisher-Yates shuffle seeded with `seed` are held out,
// but never all of a class (so a class of one item stays in training). fraction in (0, 1);
// throws when the split would hold out nothing ("... holds out no image of ... (8 images)").
ValidationSplit take_validation_split(const Dataset& set, double fraction, uint64_t seed);
// The split that holds out exactly `held_out` (increasing indices into the set), as a
// checkpoint records it; throws naming the set when an index is out of order or range.
ValidationSplit split_validation(const Dataset& set, std::vector<int64_t> held_out);

// How pixels become model inputs: x = p / 255, then (x - mean) / std when normalize is set.
struct Preprocess {
  bool normalize = false;
  float mean = 0.0f;
  float std = 1.0f;
};

// out (count, C, H, W) from items indices[0..count) of `set`.
void make_batch(Tensor& out, const Dataset& set, const int64_t* indices, int64_t count,
                const Preprocess& preprocess);
// out (count) from pixels (count): one image (or any run of pixels) made model input.
void preprocess_pixels(float* out, const uint8_t* pixels, int64_t count,
                       const Preprocess& preprocess);

}  // namespace scratchnet
