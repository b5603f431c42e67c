#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include "scratchnet/data/augment.h"
#include "scratchnet/data/loader.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/train/trainer.h"
#include "support/error.h"
#include "support/fixtures.h"
#include "support/temp_dir.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

// Pixels (C, H, W) in [1, 255]: no pixel equals the zero background.
std::vector<uint8_t> random_image(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> image(c * h * w);
  for (auto& p : image) p = static_cast<uint8_t>(1 + rng.below(255));
  return image;
}

// in (C, H, W) moved right by dx and down by dy, zeros where nothing moved in.
std::vector<uint8_t> shifted(const std::vector<uint8_t>& in, int64_t c, int64_t h, int64_t w,
                             int64_t dx, int64_t dy) {
  std::vector<uint8_t> out(in.size(), 0);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (y - dy >= 0 && y - dy < h && x - dx >= 0 && x - dx < w)
          out[(k * h + y) * w + x] = in[(k * h + y - dy) * w + x - dx];
  return out;
}

// The (dx, dy) in [-range, range]^2 for which `out` is `in` shifted, or nullopt.
std::optional<std::pair<int64_t, int64_t>> find_shift(const std::vector<uint8_t>& out,
                                                      const std::vector<uint8_t>& in, int64_t c,
                                                      int64_t h, int64_t w, int64_t range) {
  for (int64_t dy = -range; dy <= range; ++dy)
    for (int64_t dx = -range; dx <= range; ++dx)
      if (shifted(in, c, h, w, dx, dy) == out) return std::pair(dx, dy);
  return std::nullopt;
}

std::vector<uint8_t> augmented(const std::vector<uint8_t>& in, int64_t c, int64_t h, int64_t w,
                               const AugmentOptions& o, uint64_t seed) {
  std::vector<uint8_t> out(in.size());
  Rng rng(seed);
  AugmentScratch scratch;
  augment_image(out.data(), in.data(), c, h, w, o, rng, scratch);
  return out;
}

const AugmentOptions kEverything{.rotate = 15,
                                 .shift = 0.1f,
                                 .scale_min = 0.9f,
                                 .scale_max = 1.2f,
                                 .shear = 10,
                                 .elastic_alpha = 8,
                                 .elastic_sigma = 3,
                                 .crop_padding = 2,
                                 .erase = 0.5f};

TEST(Augment, InactiveIsAnExactCopyAndDrawsNothing) {
  const auto in = random_image(3, 7, 9, 1);
  std::vector<uint8_t> out(in.size());
  Rng rng(5);
  const auto state = rng.state();
  AugmentScratch scratch;
  EXPECT_FALSE(AugmentOptions{}.active());
  augment_image(out.data(), in.data(), 3, 7, 9, {}, rng, scratch);
  EXPECT_EQ(out, in);
  EXPECT_EQ(rng.state(), state);
}

TEST(Augment, ActiveWhenAnyOptionIsOn) {
  EXPECT_TRUE(AugmentOptions{.rotate = 1}.active());
  EXPECT_TRUE(AugmentOptions{.scale_max = 1.1f}.active());
  EXPECT_TRUE((AugmentOptions{.elastic_alpha = 1, .elastic_sigma = 1}.active()));
  EXPECT_TRUE(AugmentOptions{.crop_padding = 1}.active());
  EXPECT_TRUE(AugmentOptions{.erase = 0.1f}.active());
  EXPECT_TRUE(kDigitAugment.active());
}

TEST(Affine, WholePixelShiftMovesTheImage) {
  const auto in = random_image(1, 6, 8, 2);
  std::vector<uint8_t> out(in.size());
  affine_image(out.data(), in.data(), 1, 6, 8, {.tx = 1});
  EXPECT_EQ(out, shifted(in, 1, 6, 8, 1, 0));  // one pixel to the right
  affine_image(out.data(), in.data(), 1, 6, 8, {.tx = -2, .ty = 1});
  EXPECT_EQ(out, shifted(in, 1, 6, 8, -2, 1));
}

TEST(Augment, ShiftOfOnePixelMovesTheImageByOnePixel) {
  // shift 1/12 of 12 pixels: tx, ty = round(U(-1, 1)), each in {-1, 0, 1}.
  const auto in = random_image(2, 12, 12, 3);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    auto shift = find_shift(augmented(in, 2, 12, 12, {.shift = 1.0f / 12}, seed), in, 2, 12, 12, 1);
    ASSERT_TRUE(shift.has_value()) << "seed " << seed;
    seen.insert(*shift);
  }
  EXPECT_EQ(seen.size(), 9u);  // every one-pixel move, and none
}

TEST(Affine, Rotation90MatchesTheHandRotatedPattern) {
  // An asymmetric pattern (an "F" of distinct values); rotated 90 degrees counter-clockwise
  // as seen, out(y, x) = in(x, n - 1 - y): the top-right corner goes to the top-left.
  const int64_t n = 5;
  std::vector<uint8_t> in = {10,  20, 30, 40, 50,  //
                             60,  0,  0,  0,  0,   //
                             70,  80, 90, 0,  0,   //
                             100, 0,  0,  0,  0,   //
                             110, 0,  0,  0,  0};
  std::vector<uint8_t> out(in.size()), want(in.size());
  for (int64_t y = 0; y < n; ++y)
    for (int64_t x = 0; x < n; ++x) want[y * n + x] = in[x * n + (n - 1 - y)];
  affine_image(out.data(), in.data(), 1, n, n, {.angle = 90});
  for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(out[i], want[i], 1) << "pixel " << i;
  // -90 degrees turns it back.
  std::vector<uint8_t> back(in.size());
  affine_image(back.data(), out.data(), 1, n, n, {.angle = -90});
  for (size_t i = 0; i < in.size(); ++i) EXPECT_NEAR(back[i], in[i], 1) << "pixel " << i;
}

TEST(Affine, ScaleAndShearAboutTheCentre) {
  // A single bright pixel at the centre stays there under any scale and shear; one to its
  // right moves to x = c + s (x - c) under scale s, and a pixel below the centre moves by
  // tan(shear) along x per row.
  const int64_t n = 9;
  std::vector<uint8_t> in(n * n, 0), out(n * n);
  in[4 * n + 6] = 200;  // (x 6, y 4): 2 right of the centre (4, 4)
  affine_image(out.data(), in.data(), 1, n, n, {.scale = 1.5});
  EXPECT_EQ(out[4 * n + 7], 200);  // 4 + 1.5 * 2 = 7
  std::fill(in.begin(), in.end(), 0);
  in[6 * n + 4] = 200;  // 2 below the centre
  affine_image(out.data(), in.data(), 1, n, n, {.shear = 45});
  EXPECT_EQ(out[6 * n + 6], 200);  // x = 4 + tan(45 deg) * 2
  EXPECT_THAT(error_of([&] { affine_image(out.data(), in.data(), 1, n, n, {.scale = 0}); }),
              HasSubstr("affine_image: scale must be positive, got 0"));
}

TEST(Augment, CropPaddingKeepsTheContentWithinBounds) {
  const auto in = random_image(1, 10, 10, 4);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    auto shift = find_shift(augmented(in, 1, 10, 10, {.crop_padding = 2}, seed), in, 1, 10, 10, 2);
    ASSERT_TRUE(shift.has_value()) << "seed " << seed;
    seen.insert(*shift);
  }
  EXPECT_EQ(seen.size(), 25u);  // every offset of the 14 x 14 padded image
}

TEST(Augment, ErasingWithProbabilityOneZeroesARectangleOfTheAreaRange) {
  const int64_t c = 3, h = 40, w = 40;
  const std::vector<uint8_t> in(c * h * w, 255);
  const AugmentOptions o{.erase = 1, .erase_area_min = 0.1f, .erase_area_max = 0.2f};
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const auto out = augmented(in, c, h, w, o, seed);
    int64_t y0 = h, y1 = -1, x0 = w, x1 = -1, zeros = 0;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (out[y * w + x] == 0) {
          ++zeros;
          y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
        }
    ASSERT_GT(zeros, 0) << "seed " << seed;
    const int64_t rh = y1 - y0 + 1, rw = x1 - x0 + 1;
    EXPECT_EQ(zeros, rh * rw) << "seed " << seed;  // a full rectangle
    // h = round(sqrt(a r)) and w = round(sqrt(a / r)) miss h w = a by at most (h + w) / 2 + 1/4.
    const double slack = 0.5 * static_cast<double>(rh + rw) + 0.25;
    EXPECT_GE(static_cast<double>(zeros), 0.1 * h * w - slack) << "seed " << seed;
    EXPECT_LE(static_cast<double>(zeros), 0.2 * h * w + slack) << "seed " << seed;
    for (int64_t k = 1; k < c; ++k)  // every channel alike
      EXPECT_TRUE(std::equal(out.begin(), out.begin() + h * w, out.begin() + k * h * w));
  }
}

TEST(Augment, ElasticFieldsAreSmoothAndScaledByAlpha) {
  const auto in = random_image(1, 28, 28, 5);
  std::vector<uint8_t> out(in.size());
  Rng rng(6);
  AugmentScratch s;
  augment_image(out.data(), in.data(), 1, 28, 28, {.elastic_alpha = 10, .elastic_sigma = 4}, rng,
                s);
  EXPECT_NE(out, in);
  ASSERT_EQ(s.dx.size(), 28u * 28u);
  double largest = 0, largest_step = 0;
  for (int64_t y = 0; y < 28; ++y)
    for (int64_t x = 0; x + 1 < 28; ++x) {
      largest = std::max(largest, std::abs(static_cast<double>(s.dx[y * 28 + x])));
      largest_step =
          std::max(largest_step, std::abs(double{s.dx[y * 28 + x + 1]} - double{s.dx[y * 28 + x]}));
    }
  EXPECT_GT(largest, 0.1);
  EXPECT_LE(largest, 10.0);                // alpha times a mean of values in (-1, 1)
  EXPECT_LT(largest_step, 0.5 * largest);  // smoothed: neighbours move alike
}

TEST(Augment, DrawsDependOnlyOnSeedEpochAndPosition) {
  const auto in = random_image(1, 28, 28, 7);
  const auto a = augmented(in, 1, 28, 28, kEverything, augment_seed(1, 2, 3));
  EXPECT_EQ(augmented(in, 1, 28, 28, kEverything, augment_seed(1, 2, 3)), a);
  EXPECT_NE(augmented(in, 1, 28, 28, kEverything, augment_seed(1, 3, 3)), a);  // another epoch
  EXPECT_NE(augmented(in, 1, 28, 28, kEverything, augment_seed(1, 2, 4)), a);  // position
  EXPECT_NE(augmented(in, 1, 28, 28, kEverything, augment_seed(2, 2, 3)), a);  // seed
  // The scratch buffers carry nothing from one image to the next, of any size.
  const auto big = random_image(1, 40, 40, 8);
  std::vector<uint8_t> big_out(big.size()), out(in.size());
  AugmentScratch scratch;
  Rng other(9), rng(augment_seed(1, 2, 3));
  augment_image(big_out.data(), big.data(), 1, 40, 40, kEverything, other, scratch);
  augment_image(out.data(), in.data(), 1, 28, 28, kEverything, rng, scratch);
  EXPECT_EQ(out, a);
}

// ---- options, JSON ----

TEST(CheckAugment, BadOptionsNameTheField) {
  auto message = [](const AugmentOptions& o) { return error_of([&] { check_augment(o); }); };
  EXPECT_EQ(message({}), "(no error)");
  EXPECT_EQ(message(kEverything), "(no error)");
  EXPECT_EQ(message({.rotate = 200}), "augment.rotate must be in [0, 180], got 200");
  EXPECT_EQ(message({.rotate = NAN}), "augment.rotate must be in [0, 180], got nan");
  EXPECT_EQ(message({.shift = 1}), "augment.shift must be in [0, 1), got 1");
  EXPECT_EQ(message({.scale_min = 0}), "augment.scale_min must be in (0, 10], got 0");
  EXPECT_EQ(message({.scale_min = 1.1f, .scale_max = 0.9f}),
            "augment.scale_max must be in [scale_min (1.1), 10], got 0.9");
  EXPECT_EQ(message({.shear = -1}), "augment.shear must be in [0, 60], got -1");
  EXPECT_EQ(message({.elastic_alpha = -1}), "augment.elastic_alpha must be at least 0, got -1");
  EXPECT_EQ(message({.elastic_alpha = 34}),
            "augment.elastic_sigma must be in (0, 20] with elastic_alpha > 0, got 0");
  EXPECT_EQ(message({.crop_padding = -1}), "augment.crop_padding must be in [0, 1000], got -1");
  EXPECT_EQ(message({.erase = 1.5f}), "augment.erase must be in [0, 1], got 1.5");
  EXPECT_EQ(message({.erase_area_min = 0}), "augment.erase_area_min must be in (0, 1], got 0");
  EXPECT_EQ(message({.erase_area_min = 0.5f, .erase_area_max = 0.2f}),
            "augment.erase_area_max must be in [erase_area_min (0.5), 1], got 0.2");
}

TEST(AugmentJson, RoundTripKeepsEveryField) {
  const std::string text = augment_to_json(kEverything);
  EXPECT_THAT(text, HasSubstr("\"rotate\":15.0"));
  EXPECT_THAT(text, HasSubstr("\"shift\":0.1}"));  // the shortest decimal
  const AugmentOptions back = augment_from_json(text, "m.json");
  EXPECT_EQ(augment_to_json(back), text);
  EXPECT_EQ(back.scale_max, kEverything.scale_max);
  EXPECT_EQ(back.crop_padding, 2);
  EXPECT_EQ(augment_from_json("{}", "m.json").active(), false);
}

TEST(AugmentJson, BadJsonNamesTheSourceAndField) {
  auto message = [](const std::string& text) {
    return error_of([&] { augment_from_json(text, "m.json"); });
  };
  EXPECT_EQ(message(R"({"flip": true})"), "m.json: unknown field 'augment.flip'");
  EXPECT_EQ(message(R"({"rotate": "10"})"), "m.json: augment.rotate must be a number, got \"10\"");
  EXPECT_EQ(message(R"({"crop_padding": 1.5})"),
            "m.json: augment.crop_padding must be an integer, got 1.5");
  EXPECT_EQ(message(R"({"rotate": 200})"), "m.json: augment.rotate must be in [0, 180], got 200");
  EXPECT_EQ(message("[]"), "m.json: augment must be a JSON object");
}

TEST(AugmentJson, RecipeStoresItOnlyWhenActive) {
  Recipe r;
  EXPECT_THAT(recipe_to_json(r), ::testing::Not(HasSubstr("augment")));
  r.augment = kDigitAugment;
  const std::string text = recipe_to_json(r);
  EXPECT_THAT(text, HasSubstr("\"augment\":{"));
  EXPECT_EQ(augment_to_json(recipe_from_json(text, "r.json").augment),
            augment_to_json(kDigitAugment));
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"augment": {"shear": 90}})", "r.json"); }),
            "r.json: augment.shear must be in [0, 60], got 90");
}

TEST(AugmentJson, Describe) {
  EXPECT_EQ(describe_augment({}), "none");
  EXPECT_EQ(describe_augment(kDigitAugment), "rotate 10 deg, shift 0.1, scale 0.9-1.1");
  EXPECT_EQ(
      describe_augment({.elastic_alpha = 34, .elastic_sigma = 4, .crop_padding = 2, .erase = 0.5f}),
      "elastic alpha 34 sigma 4, crop padding 2, erase 0.5 (area 0.02-0.33)");
}

// ---- the loader ----

Dataset random_set(int64_t n, int64_t side) {
  Dataset set;
  set.source = "random";
  set.height = set.width = side;
  set.images = random_image(1, n * side, side, 8);
  for (int64_t i = 0; i < n; ++i) set.labels.push_back(static_cast<int32_t>(i % 10));
  for (int i = 0; i < 10; ++i) set.class_names.push_back(std::to_string(i));
  return set;
}

std::vector<std::vector<float>> epoch_batches(BatchLoader& loader, int64_t epoch,
                                              int64_t skip = 0) {
  std::vector<std::vector<float>> batches;
  loader.start_epoch(epoch, skip);
  while (const Batch* b = loader.next()) batches.push_back(b->images.to_vector());
  return batches;
}

TEST(AugmentLoader, EachItemIsAugmentedBySeedEpochAndPosition) {
  const Dataset set = random_set(23, 10);
  const Preprocess pre{.normalize = true, .mean = 0.1f, .std = 0.3f};
  BatchLoader loader(
      set,
      {.batch_size = 5, .shuffle = false, .seed = 4, .preprocess = pre, .augment = kEverything});
  const auto batches = epoch_batches(loader, 2);
  ASSERT_EQ(batches.size(), 5u);
  std::vector<float> want(100);
  for (int64_t p = 0; p < set.size(); ++p) {  // unshuffled: position p holds item p
    const std::vector<uint8_t> item(set.image(p), set.image(p) + 100);
    const auto pixels = augmented(item, 1, 10, 10, kEverything, augment_seed(4, 2, p));
    preprocess_pixels(want.data(), pixels.data(), 100, pre);
    const auto& batch = batches[p / 5];
    EXPECT_TRUE(std::equal(want.begin(), want.end(), batch.begin() + (p % 5) * 100)) << p;
  }
}

TEST(AugmentLoader, ResumedEpochsSeeTheSameBatches) {
  const Dataset set = random_set(40, 8);
  const LoaderOptions options{.batch_size = 6, .seed = 3, .augment = kEverything};
  BatchLoader straight(set, options);
  const auto e0 = epoch_batches(straight, 0);
  const auto e1 = epoch_batches(straight, 1);
  EXPECT_NE(e0, e1);
  BatchLoader resumed(set, options);  // a new process resuming at epoch 1
  EXPECT_EQ(epoch_batches(resumed, 1), e1);
  const auto rest = epoch_batches(resumed, 1, 3);  // and inside it, after 3 batches
  EXPECT_EQ(rest, std::vector<std::vector<float>>(e1.begin() + 3, e1.end()));
  BatchLoader plain(set, {.batch_size = 6, .seed = 3});
  EXPECT_NE(epoch_batches(plain, 0), e0);
}

TEST(AugmentLoader, BadOptionsAreRefused) {
  const Dataset set = random_set(4, 4);
  EXPECT_EQ(error_of([&] { BatchLoader l(set, {.augment = {.rotate = 200}}); }),
            "augment.rotate must be in [0, 180], got 200");
}

// ---- the trainer ----

TEST(AugmentTrainer, ResumingAnAugmentedRunIsBitIdentical) {
  testing::TempDir dir;
  testing::make_idx_set(dir.path().string(), 120, 40, 12);
  const DatasetSplits splits = load_dataset(dir.path().string(), "");
  const char* spec = R"({"input": [1, 12, 12], "layers": [
    {"type": "Conv2d", "out_channels": 4, "kernel": 3}, {"type": "ReLU"},
    {"type": "MaxPool2d", "kernel": 2}, {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]})";
  const Recipe r{.lr = 1e-2f, .batch_size = 16, .epochs = 3, .seed = 5, .augment = kEverything};
  auto params = [](Sequential& m) {
    std::vector<std::vector<float>> all;
    for (auto& p : m.params()) all.push_back(p.param->value.to_vector());
    return all;
  };
  Sequential straight = model_from_spec(spec), plain = model_from_spec(spec);
  straight.init(r.init, r.seed);
  plain.init(r.init, r.seed);
  Trainer(straight, splits.train, &splits.test, r).fit();
  Recipe unaugmented = r;
  unaugmented.augment = {};
  Trainer(plain, splits.train, &splits.test, unaugmented).fit();
  EXPECT_NE(params(plain), params(straight));

  Sequential first = model_from_spec(spec);
  first.init(r.init, r.seed);
  Trainer a(first, splits.train, &splits.test, r);
  a.fit({}, 1);
  a.save_checkpoint(dir / "ckpt.safetensors", {.recipe = recipe_to_json(r)});
  Sequential resumed = load_model(dir / "ckpt.safetensors").model;
  Trainer b(resumed, splits.train, &splits.test, r);
  b.load_checkpoint(dir / "ckpt.safetensors");
  b.fit();
  EXPECT_EQ(params(resumed), params(straight));
}

}  // namespace
}  // namespace scratchnet
