// scratchnet augment — a PNG grid of training images and what augmentation makes of them: the
// first column the originals, every other column one random draw (include/scratchnet/data/
// augment.h).
#include "scratchnet/data/augment.h"

#include <fmt/format.h>

#include <algorithm>

#include "common.h"
#include "scratchnet/check.h"
#include "scratchnet/data/image.h"
#include "training.h"

namespace scratchnet::cli {

namespace {

constexpr uint8_t kSeparator = 128;  // the 1-pixel lines between the cells: mid gray

struct AugmentCommandFlags {
  CommonFlags common;
  std::string dataset = "mnist";
  std::string model;
  AugmentFlags augment;
  int64_t rows = 8, cols = 8, zoom = 2;
  uint64_t seed = 1;
  std::string out = "augment.png";
};

// Copies `image` (C, H, W) into the grid (height, width, C) at (top, left), each pixel a
// zoom x zoom block.
void paste(std::vector<uint8_t>& grid, int64_t grid_width, const uint8_t* image, const Dataset& set,
           int64_t top, int64_t left, int64_t zoom) {
  const int64_t c = set.channels, h = set.height, w = set.width;
  for (int64_t y = 0; y < h * zoom; ++y)
    for (int64_t x = 0; x < w * zoom; ++x)
      for (int64_t k = 0; k < c; ++k)
        grid[((top + y) * grid_width + left + x) * c + k] =
            image[(k * h + y / zoom) * w + x / zoom];
}

void run_augment(const AugmentCommandFlags& f, const CLI::App& cmd) {
  AugmentOptions options;
  if (!f.model.empty()) {
    ModelSource src = open_model(f.model);
    if (!src.loaded.info.recipe.empty())
      options = recipe_from_json(src.loaded.info.recipe, f.model + " (recipe)").augment;
  }
  apply_augment_flags(options, f.augment, cmd);
  SN_CHECK(options.active(),
           "nothing to show: give --augment or augmentation flags such as --rotate 10{}",
           f.model.empty() ? "" : fmt::format(" ({}'s recipe has no augmentation)", f.model));
  check_output_file("--out", f.out);

  const Dataset set = load_dataset(f.dataset, f.common.data_dir).train;
  SN_CHECK(set.channels == 1 || set.channels == 3,
           "{}: images of {} channels cannot be shown (only gray or RGB)", set.source,
           set.channels);
  const int64_t rows = std::min(f.rows, set.size());
  const int64_t cell_h = set.height * f.zoom, cell_w = set.width * f.zoom;
  const int64_t height = rows * (cell_h + 1) - 1, width = f.cols * (cell_w + 1) - 1;
  const int64_t max_side = ImageLimits{}.max_side;
  SN_CHECK(height <= max_side && width <= max_side,
           "--rows {} --cols {} --zoom {}: the grid would be {}x{} pixels (at most {} a side)",
           rows, f.cols, f.zoom, width, height, max_side);

  std::vector<uint8_t> grid(height * width * set.channels, kSeparator);   // (height, width, C)
  std::vector<uint8_t> augmented(set.channels * set.height * set.width);  // (C, H, W)
  AugmentScratch scratch;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t top = r * (cell_h + 1);
    paste(grid, width, set.image(r), set, top, 0, f.zoom);
    for (int64_t k = 1; k < f.cols; ++k) {
      // Column k is the draw of epoch k - 1 for position r, as the loader would seed it.
      Rng rng(augment_seed(f.seed, k - 1, r));
      augment_image(augmented.data(), set.image(r), set.channels, set.height, set.width, options,
                    rng, scratch);
      paste(grid, width, augmented.data(), set, top, k * (cell_w + 1), f.zoom);
    }
  }
  write_png(f.out, grid.data(), height, width, set.channels);
  fmt::print(
      "wrote {} ({}x{}): the first {} training images of {} (first column) and {} "
      "augmentations of each: {}\n",
      f.out, width, height, rows, f.dataset, f.cols - 1, describe_augment(options));
}

}  // namespace

void add_augment(CLI::App& app) {
  auto flags = std::make_shared<AugmentCommandFlags>();
  AugmentCommandFlags& f = *flags;
  CLI::App* cmd = app.add_subcommand(
      "augment",
      "Show what data augmentation feeds the model: writes a PNG grid of training images, one per "
      "row, the original first and then random augmentations of it (separated by gray lines).\n"
      "  scratchnet augment --augment --out augment.png\n"
      "  scratchnet augment --rotate 15 --elastic 34,4 --erase 0.5 --rows 4 --cols 10\n"
      "  scratchnet augment --model runs/aug --dataset fashion-mnist   # a run's recipe");
  cmd->add_option("--dataset", f.dataset,
                  "A data set name (mnist, fashion-mnist) or a directory of IDX files or image "
                  "folders")
      ->capture_default_str();
  add_data_dir_flag(*cmd, f.common);
  cmd->add_option("--model", f.model,
                  "A model file or run directory whose recipe's augmentation is shown (the flags "
                  "below change it)");
  add_augment_flags(*cmd, f.augment);
  cmd->add_option("--rows", f.rows, "Images shown, one per row (the training set's first)")
      ->capture_default_str()
      ->check(kPositive);
  cmd->add_option("--cols", f.cols, "Columns: the original and COLS - 1 augmentations")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1000}));
  cmd->add_option("--zoom", f.zoom, "Each pixel shown as ZOOM x ZOOM pixels")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{16}));
  cmd->add_option("--seed", f.seed, "Seed of the random draws")->capture_default_str();
  cmd->add_option("--out", f.out, "The PNG file to write (its directory must exist)")
      ->capture_default_str();
  cmd->callback([flags, cmd] { run_augment(*flags, *cmd); });
}

}  // namespace scratchnet::cli
