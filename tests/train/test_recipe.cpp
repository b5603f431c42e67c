// Tests for train/recipe.h: the recipe and preprocessing as JSON, the checks on every field,
// and the optimiser a recipe names.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "scratchnet/optim/adam.h"
#include "scratchnet/optim/sgd.h"
#include "scratchnet/train/recipe.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Every field equal, floats bit for bit.
void expect_same(const Recipe& got, const Recipe& want) {
  EXPECT_EQ(got.optimizer, want.optimizer);
  EXPECT_EQ(bits(got.lr), bits(want.lr)) << got.lr << " vs " << want.lr;
  EXPECT_EQ(bits(got.momentum), bits(want.momentum));
  EXPECT_EQ(got.nesterov, want.nesterov);
  EXPECT_EQ(bits(got.weight_decay), bits(want.weight_decay));
  EXPECT_EQ(got.batch_size, want.batch_size);
  EXPECT_EQ(got.epochs, want.epochs);
  EXPECT_EQ(got.seed, want.seed);
  EXPECT_EQ(got.init, want.init);
  EXPECT_EQ(bits(got.label_smoothing), bits(want.label_smoothing));
  EXPECT_EQ(got.preprocess.normalize, want.preprocess.normalize);
  EXPECT_EQ(bits(got.preprocess.mean), bits(want.preprocess.mean));
  EXPECT_EQ(bits(got.preprocess.std), bits(want.preprocess.std));
  EXPECT_EQ(schedule_to_json(got.schedule), schedule_to_json(want.schedule));
}

// A valid recipe with no field at its default.
Recipe sgd_recipe() {
  Recipe r;
  r.optimizer = "sgd";
  r.lr = 0.05f;
  r.momentum = 0.9f;
  r.nesterov = true;
  r.weight_decay = 5e-4f;
  r.batch_size = 128;
  r.epochs = 12;
  r.seed = std::numeric_limits<uint64_t>::max();
  r.init = Init::kGlorot;
  r.label_smoothing = 0.1f;
  r.preprocess = {.normalize = true, .mean = 0.1307f, .std = 0.3081f};
  r.schedule = {.kind = "cosine", .unit = "step", .warmup = 50, .min_lr = 1e-5};
  return r;
}

// The message check_recipe throws for `r`, or "(no error)".
std::string check_error(const Recipe& r) {
  return error_of([&] { check_recipe(r); });
}

// ---- JSON ----

TEST(RecipeJson, DefaultRecipeIsWrittenInFull) {
  EXPECT_EQ(recipe_to_json(Recipe{}),
            R"({"batch_size":64,"epochs":5,"init":"pytorch","label_smoothing":0.0,"lr":0.001,)"
            R"("momentum":0.0,"nesterov":false,"optimizer":"adam","preprocess":{"mean":0.0,)"
            R"("normalize":false,"scale":0.00392156862745098,"std":1.0},)"
            R"("schedule":{"kind":"none"},"seed":1,)"
            R"("weight_decay":0.0})");
}

TEST(RecipeJson, RoundTripKeepsEveryField) {
  const Recipe r = sgd_recipe();
  const std::string text = recipe_to_json(r);
  expect_same(recipe_from_json(text, "r.json"), r);
  EXPECT_EQ(recipe_to_json(recipe_from_json(text, "r.json")), text);
  EXPECT_THAT(text, HasSubstr(R"("seed":18446744073709551615)"));
  EXPECT_THAT(text, HasSubstr(R"("init":"glorot")"));
}

TEST(RecipeJson, ScheduleIsStoredWithItsOwnFields) {
  Recipe r;
  r.schedule = {.kind = "multistep", .gamma = 0.5, .milestones = {3, 6}};
  const std::string text = recipe_to_json(r);
  EXPECT_THAT(text, HasSubstr(R"("schedule":{"gamma":0.5,"kind":"multistep",)"
                              R"("milestones":[3,6],"unit":"epoch"})"));
  Recipe back = recipe_from_json(text, "r.json");
  EXPECT_EQ(back.schedule.kind, "multistep");
  EXPECT_EQ(back.schedule.milestones, (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(back.schedule.gamma, 0.5);
  EXPECT_EQ(recipe_to_json(back), text);
}

// Model files written before schedules existed have no "schedule": the lr stays fixed.
TEST(RecipeJson, RecipeWithoutScheduleHasNone) {
  Recipe r = recipe_from_json(R"({"optimizer": "sgd", "lr": 0.1})", "old.json");
  EXPECT_EQ(r.schedule.kind, "none");
}

TEST(RecipeJson, ScheduleErrorsNameTheSource) {
  EXPECT_EQ(
      error_of([] { recipe_from_json(R"({"schedule": {"kind": "step", "size": 2}})", "r.json"); }),
      "r.json: unknown schedule field 'size'");
  EXPECT_EQ(error_of([] {
              recipe_from_json(R"({"schedule": {"kind": "exponential", "gamma": 0}})", "r.json");
            }),
            "r.json: schedule.gamma must be positive, got 0");
  EXPECT_EQ(error_of([] {
              recipe_from_json(R"({"schedule": {"kind": "plateau", "milestones": [2]}})", "r.json");
            }),
            "r.json: schedule field 'milestones' does not apply to the plateau schedule");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"schedule": "cosine"})", "r.json"); }),
            "r.json: schedule must be a JSON object");
}

// Floats are written as the shortest decimal that reads back as the same float.
TEST(RecipeJson, FloatsAreShortDecimals) {
  const std::string text = recipe_to_json(sgd_recipe());
  EXPECT_THAT(text, HasSubstr(R"("lr":0.05,)"));
  EXPECT_THAT(text, HasSubstr(R"("momentum":0.9,)"));
  EXPECT_THAT(text, HasSubstr(R"("weight_decay":0.0005})"));
  EXPECT_THAT(text, HasSubstr(R"("label_smoothing":0.1,)"));
  EXPECT_THAT(text, HasSubstr(R"("mean":0.1307,)"));
  EXPECT_THAT(text, HasSubstr(R"("std":0.3081})"));
  Recipe r;
  r.lr = 1e-3f;
  EXPECT_THAT(recipe_to_json(r), HasSubstr(R"("lr":0.001,)"));
  r.lr = 3e-7f;
  EXPECT_THAT(recipe_to_json(r), HasSubstr(R"("lr":3e-07,)"));
}

TEST(RecipeJson, FloatsComeBackExactly) {
  const float values[] = {0.001f,
                          std::nextafter(0.001f, 1.0f),
                          std::nextafter(0.001f, 0.0f),
                          0.1f,
                          1.0f / 3.0f,
                          2.5e-5f,
                          std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max(),
                          123456.79f};
  for (float v : values) {
    Recipe r;
    r.lr = v;
    r.weight_decay = v;
    Recipe back = recipe_from_json(recipe_to_json(r), "r.json");
    EXPECT_EQ(bits(back.lr), bits(v)) << recipe_to_json(r);
    EXPECT_EQ(bits(back.weight_decay), bits(v)) << recipe_to_json(r);
  }
}

TEST(RecipeJson, MissingFieldsKeepTheirDefaults) {
  expect_same(recipe_from_json("{}", "r.json"), Recipe{});
  Recipe want;
  want.lr = 0.01f;
  want.epochs = 3;
  want.preprocess.normalize = true;
  want.preprocess.std = 0.5f;
  expect_same(
      recipe_from_json(
          R"({"lr": 0.01, "epochs": 3, "preprocess": {"normalize": true, "std": 0.5}})", "r.json"),
      want);
}

TEST(RecipeJson, UnknownFieldIsAnError) {
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"lr": 0.01, "learning_rate": 0.1})", "r.json"); }),
            "r.json: unknown field 'learning_rate'");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"preprocess": {"stdev": 0.3}})", "r.json"); }),
            "r.json: unknown field 'stdev'");
}

TEST(RecipeJson, WrongTypesAreErrors) {
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"lr": "fast"})", "r.json"); }),
            R"(r.json: field 'lr' has the wrong type: "fast")");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"momentum": null})", "r.json"); }),
            "r.json: field 'momentum' has the wrong type: null");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"nesterov": 1})", "r.json"); }),
            "r.json: field 'nesterov' has the wrong type: 1");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"optimizer": ["sgd"]})", "r.json"); }),
            R"(r.json: field 'optimizer' has the wrong type: ["sgd"])");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"batch_size": "64"})", "r.json"); }),
            R"(r.json: field 'batch_size' has the wrong type: "64")");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"init": 1})", "r.json"); }),
            "r.json: field 'init' has the wrong type: 1");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"preprocess": 5})", "r.json"); }),
            "r.json: preprocessing must be a JSON object");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"preprocess": {"normalize": "yes"}})", "r.json"); }),
            R"(r.json: field 'normalize' has the wrong type: "yes")");
}

TEST(RecipeJson, NumbersMustHaveTheFieldsType) {
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"lr": true})", "r.json"); }),
            "r.json: field 'lr' has the wrong type: true");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"batch_size": 64.7})", "r.json"); }),
            "r.json: field 'batch_size' has the wrong type: 64.7");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"epochs": 2.5})", "r.json"); }),
            "r.json: field 'epochs' has the wrong type: 2.5");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"seed": -1})", "r.json"); }),
            "r.json: field 'seed' has the wrong type: -1");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"batch_size": 1e20})", "r.json"); }),
            "r.json: field 'batch_size' has the wrong type: 1e+20");
}

TEST(RecipeJson, UnknownInitIsAnError) {
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"init": "he"})", "r.json"); }),
            "r.json: init must be pytorch or glorot, got 'he'");
}

TEST(RecipeJson, NotAJsonObject) {
  EXPECT_THAT(error_of([] { recipe_from_json(R"({"lr": )", "r.json"); }),
              StartsWith("r.json: recipe is not valid JSON: "));
  EXPECT_EQ(error_of([] { recipe_from_json("[1, 2]", "r.json"); }),
            "r.json: recipe must be a JSON object");
}

// A recipe read from JSON is checked like any other, and the message names the source.
TEST(RecipeJson, ReadRecipeIsChecked) {
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"lr": 0})", "r.json"); }),
            "r.json: lr must be positive, got 0");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"lr": 1e300})", "r.json"); }),
            "r.json: lr must be positive, got inf");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"momentum": 0.9})", "r.json"); }),
            "r.json: momentum applies only to the sgd optimizer");
  EXPECT_EQ(error_of([] {
              recipe_from_json(R"({"preprocess": {"normalize": true, "std": 0}})", "r.json");
            }),
            "r.json: normalisation std must be positive, got 0");
}

// ---- check_recipe ----

TEST(CheckRecipe, AcceptsValidRecipes) {
  EXPECT_EQ(check_error(Recipe{}), "(no error)");
  EXPECT_EQ(check_error(sgd_recipe()), "(no error)");
  Recipe r;
  r.optimizer = "adamw";
  r.weight_decay = 0.01f;
  r.label_smoothing = 0.0f;
  r.preprocess = {.normalize = false, .mean = 0.0f, .std = 0.0f};  // std unused
  EXPECT_EQ(check_error(r), "(no error)");
}

TEST(CheckRecipe, UnknownOptimizer) {
  Recipe r;
  r.optimizer = "rmsprop";
  EXPECT_EQ(check_error(r), "optimizer must be sgd, adam or adamw, got 'rmsprop'");
  r.optimizer = "SGD";
  EXPECT_EQ(check_error(r), "optimizer must be sgd, adam or adamw, got 'SGD'");
}

TEST(CheckRecipe, LrMustBePositive) {
  Recipe r;
  r.lr = 0.0f;
  EXPECT_EQ(check_error(r), "lr must be positive, got 0");
  r.lr = -1.0f;
  EXPECT_EQ(check_error(r), "lr must be positive, got -1");
  r.lr = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(check_error(r), "lr must be positive, got nan");
  r.lr = std::numeric_limits<float>::infinity();
  EXPECT_EQ(check_error(r), "lr must be positive, got inf");
}

TEST(CheckRecipe, MomentumOutOfRange) {
  Recipe r = sgd_recipe();
  r.momentum = 1.0f;
  EXPECT_EQ(check_error(r), "momentum must be in [0, 1), got 1");
  r.momentum = -0.5f;
  EXPECT_EQ(check_error(r), "momentum must be in [0, 1), got -0.5");
}

TEST(CheckRecipe, MomentumOnlyWithSgd) {
  for (const char* optimizer : {"adam", "adamw"}) {
    Recipe r;
    r.optimizer = optimizer;
    r.momentum = 0.9f;
    EXPECT_EQ(check_error(r), "momentum applies only to the sgd optimizer") << optimizer;
  }
}

TEST(CheckRecipe, NesterovNeedsSgdWithMomentum) {
  Recipe r = sgd_recipe();
  r.momentum = 0.0f;
  EXPECT_EQ(check_error(r), "nesterov needs the sgd optimizer with momentum > 0");
  Recipe adam;
  adam.nesterov = true;
  EXPECT_EQ(check_error(adam), "nesterov needs the sgd optimizer with momentum > 0");
}

TEST(CheckRecipe, NegativeWeightDecay) {
  Recipe r;
  r.weight_decay = -0.1f;
  EXPECT_EQ(check_error(r), "weight decay must be at least 0, got -0.1");
  r.weight_decay = std::numeric_limits<float>::infinity();
  EXPECT_EQ(check_error(r), "weight decay must be at least 0, got inf");
}

TEST(CheckRecipe, BatchSizeAndEpochsAtLeastOne) {
  Recipe r;
  r.batch_size = 0;
  EXPECT_EQ(check_error(r), "batch size must be at least 1, got 0");
  r = Recipe{};
  r.epochs = 0;
  EXPECT_EQ(check_error(r), "epochs must be at least 1, got 0");
  r.epochs = -2;
  EXPECT_EQ(check_error(r), "epochs must be at least 1, got -2");
}

TEST(CheckRecipe, LabelSmoothingBelowOne) {
  Recipe r;
  r.label_smoothing = 1.0f;
  EXPECT_EQ(check_error(r), "label smoothing must be in [0, 1), got 1");
  r.label_smoothing = -0.1f;
  EXPECT_EQ(check_error(r), "label smoothing must be in [0, 1), got -0.1");
}

TEST(CheckRecipe, NormalisationStdPositive) {
  Recipe r;
  r.preprocess = {.normalize = true, .mean = 0.5f, .std = 0.0f};
  EXPECT_EQ(check_error(r), "normalisation std must be positive, got 0");
  r.preprocess.std = -0.3f;
  EXPECT_EQ(check_error(r), "normalisation std must be positive, got -0.3");
}

TEST(CheckRecipe, ChecksTheSchedule) {
  Recipe r;
  r.schedule = {.kind = "multistep", .milestones = {4, 2}};
  EXPECT_EQ(check_error(r), "schedule.milestones must be strictly increasing, got 4, 2");
  r.schedule = {.kind = "onecycle"};
  EXPECT_EQ(check_error(r), "schedule.max_lr must be positive, got 0");
}

// ---- make_optimizer ----

class MakeOptimizer : public ::testing::Test {
 protected:
  MakeOptimizer() : weight_({2}), bias_({1}) {
    weight_.value = Tensor({2}, {1.0f, -2.0f});
    weight_.grad = Tensor({2}, {0.5f, 0.25f});
    bias_.value = Tensor({1}, {0.0f});
    bias_.grad = Tensor({1}, {-1.0f});
  }
  std::vector<NamedParameter> params() { return {{"weight", &weight_}, {"bias", &bias_}}; }

  Parameter weight_, bias_;
};

TEST_F(MakeOptimizer, SgdWithTheRecipesSettings) {
  Recipe r = sgd_recipe();
  r.weight_decay = 0.0f;
  std::unique_ptr<Optimizer> opt = make_optimizer(r, params());
  ASSERT_EQ(opt->kind(), "SGD");
  EXPECT_EQ(opt->lr(), 0.05f);
  const auto* sgd = dynamic_cast<const Sgd*>(opt.get());
  ASSERT_NE(sgd, nullptr);
  EXPECT_EQ(sgd->options().momentum, 0.9f);
  EXPECT_TRUE(sgd->options().nesterov);
  // First step with Nesterov momentum: p -= lr * (g + momentum * g).
  opt->step();
  EXPECT_FLOAT_EQ(weight_.value[0], 1.0f - 0.05f * (0.5f + 0.9f * 0.5f));
  EXPECT_FLOAT_EQ(weight_.value[1], -2.0f - 0.05f * (0.25f + 0.9f * 0.25f));
  EXPECT_FLOAT_EQ(bias_.value[0], 0.05f * (1.0f + 0.9f));
}

TEST_F(MakeOptimizer, AdamWithTheRecipesSettings) {
  Recipe r;
  r.lr = 0.02f;
  r.weight_decay = 1e-4f;
  std::unique_ptr<Optimizer> opt = make_optimizer(r, params());
  ASSERT_EQ(opt->kind(), "Adam");
  EXPECT_EQ(opt->lr(), 0.02f);
  EXPECT_EQ(opt->weight_decay(), 1e-4f);
  ASSERT_NE(dynamic_cast<const Adam*>(opt.get()), nullptr);
  // Adam's first step moves each element by about lr against its gradient's sign.
  opt->step();
  EXPECT_NEAR(weight_.value[0], 1.0f - 0.02f, 1e-5f);
  EXPECT_NEAR(bias_.value[0], 0.02f, 1e-5f);
}

TEST_F(MakeOptimizer, AdamWWithTheRecipesSettings) {
  Recipe r;
  r.optimizer = "adamw";
  r.lr = 0.003f;
  r.weight_decay = 0.05f;
  std::unique_ptr<Optimizer> opt = make_optimizer(r, params());
  ASSERT_EQ(opt->kind(), "AdamW");
  EXPECT_EQ(opt->lr(), 0.003f);
  EXPECT_EQ(opt->weight_decay(), 0.05f);
  ASSERT_NE(dynamic_cast<const AdamW*>(opt.get()), nullptr);
}

TEST_F(MakeOptimizer, ChecksTheRecipe) {
  Recipe r;
  r.lr = -1.0f;
  EXPECT_EQ(error_of([&] { make_optimizer(r, params()); }), "lr must be positive, got -1");
}

// ---- preprocessing ----

TEST(PreprocessJson, RoundTrip) {
  const Preprocess p{.normalize = true, .mean = 0.1307f, .std = 0.3081f};
  const std::string text = preprocess_to_json(p);
  EXPECT_EQ(text, R"({"mean":0.1307,"normalize":true,"scale":0.00392156862745098,"std":0.3081})");
  Preprocess back = preprocess_from_json(text, "p.json");
  EXPECT_TRUE(back.normalize);
  EXPECT_EQ(bits(back.mean), bits(p.mean));
  EXPECT_EQ(bits(back.std), bits(p.std));
  EXPECT_EQ(preprocess_to_json(back), text);
}

TEST(PreprocessJson, MissingFieldsKeepTheirDefaults) {
  Preprocess p = preprocess_from_json("{}", "p.json");
  EXPECT_FALSE(p.normalize);
  EXPECT_EQ(p.mean, 0.0f);
  EXPECT_EQ(p.std, 1.0f);
  EXPECT_EQ(preprocess_to_json(p),
            R"({"mean":0.0,"normalize":false,"scale":0.00392156862745098,"std":1.0})");
}

TEST(PreprocessJson, Errors) {
  EXPECT_EQ(error_of([] { preprocess_from_json(R"({"normalise": true})", "p.json"); }),
            "p.json: unknown field 'normalise'");
  EXPECT_EQ(error_of([] { preprocess_from_json(R"({"mean": "0.5"})", "p.json"); }),
            R"(p.json: field 'mean' has the wrong type: "0.5")");
  EXPECT_EQ(error_of([] { preprocess_from_json(R"({"normalize": true, "std": 0})", "p.json"); }),
            "p.json: normalisation std must be positive, got 0");
  EXPECT_THAT(error_of([] { preprocess_from_json("mean=0.5", "p.json"); }),
              StartsWith("p.json: preprocessing is not valid JSON: "));
  EXPECT_EQ(error_of([] { preprocess_from_json(R"({"scale": 1.0})", "p.json"); }),
            "p.json: pixel scale 1 is not supported (expected 1/255)");
  EXPECT_EQ(error_of([] { preprocess_from_json(R"({"scale": "1/255"})", "p.json"); }),
            R"(p.json: field 'scale' has the wrong type: "1/255")");
  EXPECT_EQ(error_of([] { preprocess_from_json("{", "p.json"); }).find("[json.exception"),
            std::string::npos);
  EXPECT_EQ(error_of([] { preprocess_from_json("0.5", "p.json"); }),
            "p.json: preprocessing must be a JSON object");
}

// ---- regularisation and model selection ----

TEST(RecipeJson, RegularisationFieldsAreWrittenOnlyWhenSet) {
  EXPECT_THAT(recipe_to_json(Recipe{}), Not(HasSubstr("l1")));
  Recipe r;
  r.l1 = 1e-4f;
  r.validation = 0.1;
  r.early_stop = {.patience = 3, .monitor = "val_accuracy", .min_delta = 0.001};
  const std::string text = recipe_to_json(r);
  EXPECT_THAT(text, HasSubstr(R"("early_stop":{"min_delta":0.001,"monitor":"val_accuracy",)"
                              R"("patience":3})"));
  EXPECT_THAT(text, HasSubstr(R"("l1":0.0001,)"));
  EXPECT_THAT(text, HasSubstr(R"("validation":0.1,)"));
  const Recipe back = recipe_from_json(text, "r.json");
  EXPECT_EQ(bits(back.l1), bits(r.l1));
  EXPECT_EQ(back.validation, 0.1);
  EXPECT_EQ(back.early_stop, r.early_stop);
  EXPECT_EQ(recipe_to_json(back), text);
}

TEST(CheckRecipe, RegularisationAndSelection) {
  Recipe r;
  r.l1 = -1e-3f;
  EXPECT_EQ(check_error(r), "l1 must be at least 0, got -0.001");
  r = {};
  for (double v : {1.0, -0.1}) {
    r.validation = v;
    EXPECT_EQ(check_error(r), fmt::format("validation must be in [0, 1), got {}", v));
  }
  r = {};
  r.early_stop.patience = 2;
  EXPECT_EQ(check_error(r),
            "early_stop.monitor is val_loss, but validation is 0: hold out a validation set or "
            "monitor a test metric");
  r.early_stop.monitor = "test_accuracy";
  EXPECT_EQ(check_error(r), "(no error)");
  r.early_stop.patience = -1;
  EXPECT_EQ(check_error(r), "early_stop.patience must be at least 0, got -1");
  r = {};
  r.schedule = {.kind = "plateau", .monitor = "val_accuracy", .mode = "max"};
  EXPECT_EQ(check_error(r),
            "schedule.monitor is val_accuracy, but validation is 0: hold out a validation set or "
            "monitor another metric");
  r.validation = 0.1;
  EXPECT_EQ(check_error(r), "(no error)");
  EXPECT_EQ(error_of([] { recipe_from_json(R"({"validation": 1})", "r.json"); }),
            "r.json: validation must be in [0, 1), got 1");
}

}  // namespace
}  // namespace scratchnet
