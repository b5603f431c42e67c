#include "scratchnet/data/folder.h"

#include <algorithm>
#include <filesystem>

#include "scratchnet/check.h"
#include "scratchnet/parallel.h"
#include "scratchnet/rng.h"

namespace scratchnet {

namespace fs = std::filesystem;

namespace {

struct ClassFiles {
  std::string name;
  std::vector<std::string> files;  // sorted by name
};

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

bool is_idx_name(const std::string& name) {
  for (const char* stem : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    if (name == stem || name == std::string(stem) + ".gz") return true;
  return false;
}

// Sorted names of the visible folders in `dir`.
std::vector<std::string> subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.is_directory() && !hidden(e.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<ClassFiles> list_classes(const fs::path& dir) {
  SN_CHECK(fs::is_directory(dir), "{}: not a directory", dir.string());
  std::vector<ClassFiles> classes;
  for (const std::string& name : subfolders(dir)) {
    ClassFiles c{.name = name};
    for (const fs::directory_entry& e : fs::directory_iterator(dir / name))
      if (e.is_regular_file() && !hidden(e.path()) && has_image_extension(e.path().string()))
        c.files.push_back(e.path().string());
    SN_CHECK(!c.files.empty(), "{}: class folder without PNG or JPEG images (.png, .jpg, .jpeg)",
             (dir / name).string());
    std::sort(c.files.begin(), c.files.end());
    classes.push_back(std::move(c));
  }
  SN_CHECK(!classes.empty(),
           "{}: no class folders: expected one folder of PNG or JPEG images per class "
           "({}/<class>/<image>.png)",
           dir.string(), dir.string());
  return classes;
}

std::vector<std::string> names_of(const std::vector<ClassFiles>& classes) {
  std::vector<std::string> names;
  for (const ClassFiles& c : classes) names.push_back(c.name);
  return names;
}

// Decodes and converts every file of every class, the files of class i labelled i.
Dataset convert(const std::vector<ClassFiles>& classes, const std::string& source,
                const FolderOptions& options) {
  std::vector<const std::string*> files;
  Dataset set;
  set.source = source;
  set.height = set.width = options.style.size;
  set.class_names = names_of(classes);
  for (size_t c = 0; c < classes.size(); ++c)
    for (const std::string& f : classes[c].files) {
      files.push_back(&f);
      set.labels.push_back(static_cast<int32_t>(c));
    }
  const int64_t pixels = set.height * set.width;
  set.images.resize(files.size() * pixels);  // (size, 1, height, width)
  // Each image is written to its own slot: the set is the same for any thread count.
  parallel_for(static_cast<int64_t>(files.size()), [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> digit;  // (height, width)
    for (int64_t i = begin; i < end; ++i) {
      to_mnist_style(digit, read_image(*files[i], options.limits), options.style);
      std::copy(digit.begin(), digit.end(), set.images.begin() + i * pixels);
    }
  });
  return set;
}

void keep_first(std::vector<ClassFiles>& classes, int64_t per_class) {
  if (per_class <= 0) return;
  for (ClassFiles& c : classes)
    if (static_cast<int64_t>(c.files.size()) > per_class) c.files.resize(per_class);
}

void check_options(const FolderOptions& o) {
  SN_CHECK(o.per_class >= 0, "image folder: per_class must be at least 0, got {}", o.per_class);
  SN_CHECK(o.test_fraction >= 0 && o.test_fraction < 1,
           "image folder: test_fraction must be in [0, 1), got {}", o.test_fraction);
}

}  // namespace

bool is_image_folder(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  bool has_folder = false;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (is_idx_name(e.path().filename().string())) return false;
    if (e.is_directory() && !hidden(e.path())) has_folder = true;
  }
  return has_folder;
}

Dataset load_image_folder(const std::string& dir, const FolderOptions& options) {
  check_options(options);
  std::vector<ClassFiles> classes = list_classes(dir);
  keep_first(classes, options.per_class);
  return convert(classes, dir, options);
}

DatasetSplits load_folder_dataset(const std::string& dir, const FolderOptions& options) {
  check_options(options);
  const fs::path root(dir);
  DatasetSplits splits;
  if (fs::is_directory(root / "train") && fs::is_directory(root / "test")) {
    std::vector<ClassFiles> train = list_classes(root / "train");
    std::vector<ClassFiles> test = list_classes(root / "test");
    SN_CHECK(names_of(train) == names_of(test),
             "{}: train/ has the classes [{}] but test/ has [{}]; they must be the same", dir,
             fmt::join(names_of(train), ", "), fmt::join(names_of(test), ", "));
    keep_first(train, options.per_class);
    splits.train = convert(train, (root / "train").string(), options);
    splits.test = convert(test, (root / "test").string(), options);
    return splits;
  }
  std::vector<ClassFiles> all = list_classes(root);
  std::vector<ClassFiles> train, test;
  Rng rng(options.seed);
  for (ClassFiles& c : all) {
    const int64_t n = static_cast<int64_t>(c.files.size());
    const int64_t n_test = std::min<int64_t>(n - 1, std::llround(n * options.test_fraction));
    // A seeded Fisher–Yates shuffle picks the held-out images; both parts stay in name order.
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order[i], order[rng.below(static_cast<uint64_t>(i) + 1)]);
    std::vector<bool> held_out(n, false);
    for (int64_t i = 0; i < n_test; ++i) held_out[order[i]] = true;
    ClassFiles tr{.name = c.name}, te{.name = c.name};
    for (int64_t i = 0; i < n; ++i) (held_out[i] ? te : tr).files.push_back(c.files[i]);
    train.push_back(std::move(tr));
    test.push_back(std::move(te));
  }
  keep_first(train, options.per_class);
  splits.train = convert(train, dir, options);
  splits.test = convert(test, dir, options);
  return splits;
}

}  // namespace scratchnet
