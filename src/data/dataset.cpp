#include "scratchnet/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "scratchnet/check.h"
#include "scratchnet/data/folder.h"
#include "scratchnet/data/idx.h"
#include "scratchnet/rng.h"

namespace scratchnet {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kDigits = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
const std::vector<std::string> kFashion = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                           "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                           "Bag",         "Ankle boot"};

// dir/name or dir/name.gz, whichever exists.
std::string find_idx(const fs::path& dir, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"})
    if (fs::exists(dir / candidate)) return (dir / candidate).string();
  fail("{}: missing {} (or {}.gz)", dir.string(), name, name);
}

}  // namespace

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         const std::vector<std::string>& class_names) {
  IdxArray images = read_idx(images_path);
  IdxArray labels = read_idx(labels_path);
  SN_CHECK(images.dims.size() == 3, "{}: expected images of shape (N, H, W), got {} dimensions",
           images_path, images.dims.size());
  SN_CHECK(labels.dims.size() == 1, "{}: expected labels of shape (N), got {} dimensions",
           labels_path, labels.dims.size());
  SN_CHECK(images.dims[0] == labels.dims[0], "{} has {} images but {} has {} labels", images_path,
           images.dims[0], labels_path, labels.dims[0]);
  SN_CHECK(images.dims[1] > 0 && images.dims[2] > 0, "{}: images of size {}x{} are empty",
           images_path, images.dims[1], images.dims[2]);
  Dataset set;
  set.source = images_path;
  set.height = images.dims[1];
  set.width = images.dims[2];
  set.images = std::move(images.data);
  set.class_names = class_names;
  set.labels.reserve(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    int32_t label = labels.data[i];
    SN_CHECK(label < static_cast<int32_t>(class_names.size()),
             "{}: label {} at index {} is out of range for {} classes", labels_path, label, i,
             class_names.size());
    set.labels.push_back(label);
  }
  return set;
}

std::vector<std::string> dataset_names() { return {"mnist", "fashion-mnist"}; }

std::vector<std::string> dataset_class_names(const std::string& name) {
  if (name == "mnist") return kDigits;
  if (name == "fashion-mnist") return kFashion;
  fail("unknown dataset '{}' (known: mnist, fashion-mnist, or a directory of IDX files)", name);
}

DatasetSplits load_dataset(const std::string& name_or_dir, const std::string& data_dir) {
  return load_dataset(name_or_dir, data_dir, FolderOptions{});
}

DatasetSplits load_dataset(const std::string& name_or_dir, const std::string& data_dir,
                           const FolderOptions& folder) {
  auto names = dataset_names();
  bool named = std::find(names.begin(), names.end(), name_or_dir) != names.end();
  fs::path dir = named ? fs::path(data_dir) / name_or_dir : fs::path(name_or_dir);
  if (!fs::is_directory(dir)) {
    if (named)
      fail("dataset '{}' not found in {}: run scripts/fetch-data.sh --data-dir {} {}", name_or_dir,
           dir.string(), data_dir, name_or_dir);
    fail("dataset '{}' is neither a known name (mnist, fashion-mnist) nor a directory",
         name_or_dir);
  }
  if (!named && is_image_folder(dir.string())) return load_folder_dataset(dir.string(), folder);
  std::vector<std::string> classes = named ? dataset_class_names(name_or_dir) : kDigits;
  if (!named) {
    bool any_idx = false;
    for (std::string f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
      any_idx = any_idx || fs::exists(dir / f) || fs::exists(dir / (f + ".gz"));
    SN_CHECK(any_idx,
             "{}: holds neither the IDX files of a data set (train-images-idx3-ubyte, ...) nor "
             "class folders of PNG/JPEG images",
             dir.string());
    // A directory's labels decide how many classes it has (at least 10, like MNIST's).
    IdxArray labels = read_idx(find_idx(dir, "train-labels-idx1-ubyte"));
    int max_label = 9;
    for (uint8_t l : labels.data) max_label = std::max<int>(max_label, l);
    classes.clear();
    for (int i = 0; i <= max_label; ++i) classes.push_back(std::to_string(i));
  }
  DatasetSplits splits;
  splits.train = load_idx_dataset(find_idx(dir, "train-images-idx3-ubyte"),
                                  find_idx(dir, "train-labels-idx1-ubyte"), classes);
  splits.test = load_idx_dataset(find_idx(dir, "t10k-images-idx3-ubyte"),
                                 find_idx(dir, "t10k-labels-idx1-ubyte"), classes);
  SN_CHECK(splits.train.height == splits.test.height && splits.train.width == splits.test.width,
           "{}: training images are {}x{} but test images are {}x{}", dir.string(),
           splits.train.height, splits.train.width, splits.test.height, splits.test.width);
  return splits;
}

Dataset take_first(const Dataset& set, int64_t n) {
  SN_CHECK(n >= 1 && n <= set.size(), "cannot take {} items from {}, which has {}", n, set.source,
           set.size());
  Dataset sub = set;
  sub.labels.resize(n);
  sub.images.resize(n * set.channels * set.height * set.width);
  return sub;
}

Dataset take_per_class(const Dataset& set, int64_t n) {
  SN_CHECK(n >= 1, "cannot take {} items per class from {}", n, set.source);
  const int64_t pixels = set.channels * set.height * set.width;
  std::vector<int64_t> taken(std::max<int64_t>(set.num_classes(), 1), 0);
  Dataset sub = set;
  sub.labels.clear();
  sub.images.clear();
  for (int64_t i = 0; i < set.size(); ++i) {
    const int32_t label = set.labels[i];
    if (label >= static_cast<int64_t>(taken.size())) taken.resize(label + 1, 0);
    if (taken[label] >= n) continue;
    ++taken[label];
    sub.labels.push_back(label);
    sub.images.insert(sub.images.end(), set.image(i), set.image(i) + pixels);
  }
  for (size_t c = 0; c < taken.size(); ++c)
    SN_CHECK(taken[c] >= n, "{}: class {} has {} image{}, fewer than the {} per class asked for",
             set.source,
             c < set.class_names.size() ? "'" + set.class_names[c] + "'" : std::to_string(c),
             taken[c], taken[c] == 1 ? "" : "s", n);
  return sub;
}

ValidationSplit take_validation_split(const Dataset& set, double fraction, uint64_t seed) {
  SN_CHECK(fraction > 0 && fraction < 1, "validation fraction must be in (0, 1), got {}", fraction);
  std::vector<std::vector<int64_t>> by_class;
  for (int64_t i = 0; i < set.size(); ++i) {
    const auto label = static_cast<size_t>(set.labels[i]);
    if (label >= by_class.size()) by_class.resize(label + 1);
    by_class[label].push_back(i);
  }
  Rng rng(seed);
  std::vector<int64_t> held_out;
  for (std::vector<int64_t>& items : by_class) {
    const auto n = static_cast<int64_t>(items.size());
    const int64_t take = std::min<int64_t>(std::llround(fraction * static_cast<double>(n)), n - 1);
    for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates
      std::swap(items[i], items[rng.below(static_cast<uint64_t>(i) + 1)]);
    held_out.insert(held_out.end(), items.begin(), items.begin() + std::max<int64_t>(take, 0));
  }
  SN_CHECK(!held_out.empty(),
           "validation fraction {} holds out no image of {} ({} images): give a larger fraction",
           fraction, set.source, set.size());
  std::sort(held_out.begin(), held_out.end());
  return split_validation(set, std::move(held_out));
}

ValidationSplit split_validation(const Dataset& set, std::vector<int64_t> held_out) {
  const int64_t pixels = set.channels * set.height * set.width;
  ValidationSplit split{set, set, std::move(held_out)};
  for (Dataset* part : {&split.train, &split.validation}) {
    part->labels.clear();
    part->images.clear();
  }
  size_t next = 0;  // the next held-out index
  for (int64_t i = 0; i < set.size(); ++i) {
    const bool out = next < split.held_out.size() && split.held_out[next] == i;
    if (out) ++next;
    Dataset& part = out ? split.validation : split.train;
    part.labels.push_back(set.labels[i]);
    part.images.insert(part.images.end(), set.image(i), set.image(i) + pixels);
  }
  SN_CHECK(next == split.held_out.size(),
           "{}: held-out index {} is out of order or past the set's {} images", set.source,
           next < split.held_out.size() ? split.held_out[next] : -1, set.size());
  return split;
}

void make_batch(Tensor& out, const Dataset& set, const int64_t* indices, int64_t count,
                const Preprocess& preprocess) {
  const int64_t pixels = set.channels * set.height * set.width;
  out.resize({count, set.channels, set.height, set.width});
  for (int64_t b = 0; b < count; ++b)
    preprocess_pixels(out.data() + b * pixels, set.image(indices[b]), pixels, preprocess);
}

void preprocess_pixels(float* out, const uint8_t* pixels, int64_t count,
                       const Preprocess& preprocess) {
  // x = p / 255 first, as torchvision's ToTensor does, then (x - mean) / std as Normalize.
  const float mean = preprocess.normalize ? preprocess.mean : 0.0f;
  const float std = preprocess.normalize ? preprocess.std : 1.0f;
  for (int64_t i = 0; i < count; ++i) {
    float x = static_cast<float>(pixels[i]) / 255.0f;
    out[i] = preprocess.normalize ? (x - mean) / std : x;
  }
}

}  // namespace scratchnet
