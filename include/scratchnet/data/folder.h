// folder.h — data sets from folders of PNG/JPEG images, one folder per class.
//
// Two layouts are read:
//   DIR/<class>/<image>                        one set, split into train and test here: in each
//                                              class a seeded random test_fraction of the
//                                              images is the test split (at least one image
//                                              stays in train)
//   DIR/train/<class>/<image>, DIR/test/<class>/<image>
//                                              the two splits as they are; both must have the
//                                              same class folders
// Classes are the folder names sorted (byte order), so class i is the i-th name; images are
// read in file-name order, so the same folder always gives the same set. Every image becomes a
// 28 x 28 MNIST-style digit (image.h: to_mnist_style), one channel, so a Dataset from a folder
// is used like one from IDX files (Preprocess, make_batch, the trainer) and records the class
// names.
//
// What counts: files ending in .png, .jpg or .jpeg (any case) are images; other files
// (README.txt, .DS_Store, Thumbs.db), hidden entries (".*") and folders inside a class folder
// are ignored. Errors name the folder or file: no class folders, a class folder without
// images, an image file that cannot be decoded (truncated, corrupt, too large, not really a
// PNG/JPEG), a blank image (no ink), train/ and test/ with different classes.
//
// Like torchvision.datasets.ImageFolder (classes from sorted folder names), with MNIST's
// conversion as the transform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "scratchnet/data/dataset.h"
#include "scratchnet/data/image.h"

namespace scratchnet {

struct FolderOptions {
  int64_t per_class = 0;       // few-shot: keep the first N training images of each class
                               // (by file name) when > 0; the test split is never cut
  double test_fraction = 0.2;  // one-folder layout: share of each class held out, in [0, 1)
  uint64_t seed = 0;           // one-folder layout: which images are held out
  MnistStyle style;            // how images become digits
  ImageLimits limits;          // what images are accepted
};

// Whether `dir` is an image folder set: a directory with class folders (or train/ and test/
// folders) and none of the IDX files load_dataset reads.
bool is_image_folder(const std::string& dir);

// One folder of class folders, every image, no split: DIR/<class>/<image>.
Dataset load_image_folder(const std::string& dir, const FolderOptions& options = {});

// Either layout above, as train and test splits with the same class names.
DatasetSplits load_folder_dataset(const std::string& dir, const FolderOptions& options = {});

}  // namespace scratchnet
