// Tests for train/schedule.h: every schedule against PyTorch 1.13's lr_scheduler
// (tests/golden/schedules, made by tools/golden_schedules.py), the checks on every option, the
// recipe JSON of a schedule, and the state a checkpoint keeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scratchnet/train/schedule.h"
#include "support/error.h"

namespace scratchnet {
namespace {

using json = nlohmann::json;
using testing::error_of;
using ::testing::HasSubstr;

json golden(const std::string& kind) {
  const std::string path = std::string(SN_GOLDEN_DIR) + "/schedules/" + kind + ".json";
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << path;
  json doc = json::parse(file);
  EXPECT_EQ(doc.at("kind"), kind);
  EXPECT_GE(doc.at("cases").size(), 3u) << path;
  return doc;
}

double relative(double got, double want) {
  return want == 0 ? std::abs(got) : std::abs(got - want) / std::abs(want);
}

// Runs one golden case through an LrSchedule made from the case's recipe JSON and compares
// every tick with PyTorch: the double lr to the last bit, the float the optimiser gets within
// 1e-6, the momentum (one-cycle) to the last bit.
void expect_matches(const json& c, const std::string& kind) {
  const std::string name = kind + "/" + c.at("name").get<std::string>();
  SCOPED_TRACE(name);
  ScheduleOptions options = schedule_from_json(c.at("options").dump(), name);
  LrSchedule s(options, c.at("base_lr").get<double>(), c.at("epochs").get<int64_t>(),
               c.at("steps_per_epoch").get<int64_t>());
  const std::vector<double> lr = c.at("lr");
  const std::vector<double> momentum = c.value("momentum", std::vector<double>{});
  const std::vector<double> metrics = c.value("metrics", std::vector<double>{});
  ASSERT_GE(lr.size(), 7u);
  for (size_t t = 0; t < lr.size(); ++t) {
    if (t > 0) {
      if (kind == "plateau")
        s.step(metrics.at(t - 1));
      else
        s.step();
    }
    ASSERT_EQ(s.ticks(), static_cast<int64_t>(t));
    EXPECT_EQ(s.lr(), lr[t]) << "tick " << t;
    float used = static_cast<float>(s.lr()), want = static_cast<float>(lr[t]);
    EXPECT_LE(relative(used, want), 1e-6) << "tick " << t << ": " << used << " vs " << want;
    if (!momentum.empty()) {
      EXPECT_EQ(s.momentum(), momentum[t]) << "tick " << t;
    }
  }
}

class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, EveryTickMatchesPyTorch) {
  const json doc = golden(GetParam());
  for (const json& c : doc.at("cases")) expect_matches(c, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Schedules, Golden,
                         ::testing::Values("step", "multistep", "exponential", "cosine", "onecycle",
                                           "plateau"));

// PyTorch's closed forms agree with its chainable form up to rounding; where the two differ in
// the last bits, scratchnet gives the chainable form's value, which is what a PyTorch training
// loop uses.
TEST(GoldenForms, ChainableNotClosedForm) {
  int differing = 0;
  for (const char* kind : {"step", "multistep", "exponential", "cosine"}) {
    const json doc = golden(kind);
    for (const json& c : doc.at("cases")) {
      const std::vector<double> lr = c.at("lr"), closed = c.at("closed_form");
      ScheduleOptions options = schedule_from_json(c.at("options").dump(), "golden");
      LrSchedule s(options, c.at("base_lr").get<double>(), c.at("epochs").get<int64_t>(), 1);
      for (size_t t = 0; t < lr.size(); ++t) {
        if (t > 0) s.step();
        EXPECT_LE(relative(closed[t], lr[t]), 1e-15) << kind << " tick " << t;
        if (closed[t] != lr[t]) {
          ++differing;
          EXPECT_EQ(s.lr(), lr[t]);
          EXPECT_NE(s.lr(), closed[t]);
        }
      }
    }
  }
  EXPECT_GT(differing, 20);  // the goldens do tell the two forms apart
}

// A schedule per batch counts batches: cosine over 5 epochs of 10 steps is PyTorch's cosine
// over 50 ticks.
TEST(Units, PerStepCountsBatches) {
  const json doc = golden("cosine");
  const json* case50 = nullptr;
  for (const json& c : doc.at("cases"))
    if (c.at("epochs") == 50) case50 = &c;
  ASSERT_NE(case50, nullptr);
  ScheduleOptions options = schedule_from_json(case50->at("options").dump(), "golden");
  options.unit = "step";
  LrSchedule s(options, case50->at("base_lr").get<double>(), 5, 10);
  EXPECT_TRUE(s.per_step());
  EXPECT_EQ(s.total(), 50);
  const std::vector<double> lr = case50->at("lr");
  for (size_t t = 0; t < lr.size(); ++t) {
    if (t > 0) s.step();
    EXPECT_EQ(s.lr(), lr[t]) << t;
  }
  LrSchedule per_epoch(ScheduleOptions{.kind = "cosine"}, 0.1, 5, 10);
  EXPECT_FALSE(per_epoch.per_step());
  EXPECT_EQ(per_epoch.total(), 5);
  EXPECT_TRUE(LrSchedule(ScheduleOptions{.kind = "onecycle", .max_lr = 0.1}, 0.1, 2, 9).per_step());
}

TEST(Kinds, NoneKeepsTheBaseLr) {
  LrSchedule s(ScheduleOptions{}, 0.01, 3, 4);
  for (int t = 0; t < 5; ++t, s.step()) EXPECT_EQ(s.lr(), 0.01);
  EXPECT_TRUE(std::isnan(s.momentum()));
}

TEST(Kinds, OneCycleCannotStepPastItsEnd) {
  LrSchedule s(ScheduleOptions{.kind = "onecycle", .max_lr = 0.1}, 0.1, 2, 5);
  for (int t = 0; t < 10; ++t) s.step();
  EXPECT_EQ(s.ticks(), 10);
  EXPECT_EQ(error_of([&] { s.step(); }),
            "the onecycle schedule has 10 steps: it cannot step again");
  EXPECT_EQ(s.ticks(), 10);
}

TEST(Kinds, MetricOnlyForPlateau) {
  LrSchedule plateau(ScheduleOptions{.kind = "plateau"}, 0.1, 3, 1);
  EXPECT_EQ(error_of([&] { plateau.step(); }),
            "the plateau schedule steps with a metric: call step(metric)");
  LrSchedule step(ScheduleOptions{.kind = "step"}, 0.1, 3, 1);
  EXPECT_EQ(error_of([&] { step.step(0.5); }),
            "the step schedule steps without a metric: call step()");
}

// ---- checks ----

std::string check_error(const ScheduleOptions& o) {
  return error_of([&] { check_schedule(o); });
}

TEST(CheckSchedule, AcceptsTheDefaultsOfEveryKind) {
  for (const char* kind : {"none", "step", "exponential", "cosine", "plateau"})
    EXPECT_EQ(check_error({.kind = kind}), "(no error)") << kind;
  EXPECT_EQ(check_error({.kind = "multistep", .milestones = {2, 5}}), "(no error)");
  EXPECT_EQ(check_error({.kind = "onecycle", .max_lr = 0.1}), "(no error)");
}

TEST(CheckSchedule, KindAndUnit) {
  EXPECT_EQ(check_error({.kind = "cyclic"}),
            "schedule.kind must be none, step, multistep, exponential, cosine, onecycle or "
            "plateau, got 'cyclic'");
  EXPECT_EQ(check_error({.kind = "step", .unit = "batch"}),
            "schedule.unit must be epoch or step, got 'batch'");
  EXPECT_EQ(check_error({.kind = "onecycle", .unit = "epoch", .max_lr = 0.1}),
            "schedule.unit must be step for onecycle (it changes the lr every batch), got "
            "'epoch'");
  EXPECT_EQ(check_error({.kind = "plateau", .unit = "step"}),
            "schedule.unit must be epoch for plateau (it follows an epoch's metric), got 'step'");
}

TEST(CheckSchedule, StepFamily) {
  EXPECT_EQ(check_error({.kind = "step", .gamma = 0}), "schedule.gamma must be positive, got 0");
  EXPECT_EQ(check_error({.kind = "exponential", .gamma = -0.5}),
            "schedule.gamma must be positive, got -0.5");
  EXPECT_EQ(check_error({.kind = "exponential", .gamma = NAN}),
            "schedule.gamma must be positive, got nan");
  EXPECT_EQ(check_error({.kind = "step", .step_size = 0}),
            "schedule.step_size must be at least 1, got 0");
  EXPECT_EQ(check_error({.kind = "multistep"}), "schedule.milestones must list at least one tick");
  EXPECT_EQ(check_error({.kind = "multistep", .milestones = {0, 3}}),
            "schedule.milestones must be at least 1, got 0, 3");
  EXPECT_EQ(check_error({.kind = "multistep", .milestones = {3, 6, 6}}),
            "schedule.milestones must be strictly increasing, got 3, 6, 6");
  EXPECT_EQ(check_error({.kind = "multistep", .milestones = {6, 3}}),
            "schedule.milestones must be strictly increasing, got 6, 3");
}

TEST(CheckSchedule, Cosine) {
  EXPECT_EQ(check_error({.kind = "cosine", .warmup = -1}),
            "schedule.warmup must be at least 0, got -1");
  EXPECT_EQ(check_error({.kind = "cosine", .warmup_start_factor = 0}),
            "schedule.warmup_start_factor must be in (0, 1], got 0");
  EXPECT_EQ(check_error({.kind = "cosine", .warmup_start_factor = 1.5}),
            "schedule.warmup_start_factor must be in (0, 1], got 1.5");
  EXPECT_EQ(check_error({.kind = "cosine", .min_lr = -1e-5}),
            "schedule.min_lr must be at least 0, got -1e-05");
}

TEST(CheckSchedule, OneCycle) {
  EXPECT_EQ(check_error({.kind = "onecycle"}), "schedule.max_lr must be positive, got 0");
  ScheduleOptions o{.kind = "onecycle", .max_lr = 0.1};
  o.pct_start = 1;
  EXPECT_EQ(check_error(o), "schedule.pct_start must be in (0, 1), got 1");
  o.pct_start = 0.3;
  o.anneal_strategy = "cosine";
  EXPECT_EQ(check_error(o), "schedule.anneal_strategy must be cos or linear, got 'cosine'");
  o.anneal_strategy = "linear";
  o.div_factor = 0;
  EXPECT_EQ(check_error(o), "schedule.div_factor must be positive, got 0");
  o.div_factor = 25;
  o.final_div_factor = INFINITY;
  EXPECT_EQ(check_error(o), "schedule.final_div_factor must be positive, got inf");
  o.final_div_factor = 1e4;
  o.base_momentum = 0.99;
  EXPECT_EQ(check_error(o),
            "schedule.base_momentum and max_momentum must satisfy 0 <= base <= max < 1, got "
            "0.99 and 0.95");
}

TEST(CheckSchedule, Plateau) {
  ScheduleOptions o{.kind = "plateau"};
  EXPECT_THAT(check_error({.kind = "plateau", .monitor = "valid_loss"}),
              HasSubstr("schedule.monitor must be test_loss, test_accuracy, train_loss, "
                        "train_accuracy, val_loss or val_accuracy, got 'valid_loss'"));
  EXPECT_EQ(check_error({.kind = "plateau", .monitor = "val_loss"}), "(no error)");
  EXPECT_EQ(check_error({.kind = "plateau", .mode = "maximum"}),
            "schedule.mode must be min or max, got 'maximum'");
  EXPECT_EQ(check_error({.kind = "plateau", .factor = 1}),
            "schedule.factor must be in (0, 1), got 1");
  EXPECT_EQ(check_error({.kind = "plateau", .patience = -1}),
            "schedule.patience must be at least 0, got -1");
  EXPECT_EQ(check_error({.kind = "plateau", .threshold = -0.1}),
            "schedule.threshold must be at least 0, got -0.1");
  EXPECT_EQ(check_error({.kind = "plateau", .threshold = 1}),
            "schedule.threshold must be below 1 with threshold_mode rel, got 1");
  EXPECT_EQ(check_error({.kind = "plateau", .threshold = 1, .threshold_mode = "abs"}),
            "(no error)");
  EXPECT_EQ(check_error({.kind = "plateau", .threshold_mode = "relative"}),
            "schedule.threshold_mode must be rel or abs, got 'relative'");
  EXPECT_EQ(check_error({.kind = "plateau", .cooldown = -2}),
            "schedule.cooldown must be at least 0, got -2");
  EXPECT_EQ(check_error({.kind = "plateau", .eps = -1}), "schedule.eps must be at least 0, got -1");
  EXPECT_EQ(check_error({.kind = "plateau", .min_lr = NAN}),
            "schedule.min_lr must be at least 0, got nan");
}

// Checks that need the run's length are made when the schedule is made.
TEST(LrScheduleChecks, RunLength) {
  EXPECT_EQ(error_of([] { LrSchedule({.kind = "cosine", .warmup = 5}, 0.1, 5, 100); }),
            "schedule.warmup of 5 epochs leaves no epoch to anneal in a run of 5 epochs");
  EXPECT_EQ(
      error_of([] { LrSchedule({.kind = "cosine", .unit = "step", .warmup = 12}, 0.1, 3, 4); }),
      "schedule.warmup of 12 steps leaves no step to anneal in a run of 12 steps");
  EXPECT_EQ(error_of([] { LrSchedule({.kind = "cosine", .warmup = 4}, 0.1, 5, 1); }), "(no error)");
  EXPECT_EQ(error_of([] { LrSchedule({.kind = "onecycle", .max_lr = 0.1}, 0.1, 1, 3); }),
            "schedule.pct_start 0.3 leaves a one-cycle phase without steps in a run of 3 steps "
            "(the rise needs pct_start x steps > 1, the fall at least a step more)");
  EXPECT_THAT(error_of([] {
                LrSchedule(
                    {.kind = "onecycle", .max_lr = 0.1, .pct_start = 0.6, .three_phase = true}, 0.1,
                    1, 20);
              }),
              HasSubstr("schedule.pct_start 0.6 leaves a one-cycle phase without steps"));
  EXPECT_EQ(error_of([] { LrSchedule({}, 0, 1, 1); }),
            "schedule: the base lr must be positive, got 0");
  EXPECT_EQ(error_of([] { LrSchedule({}, 0.1, 0, 1); }),
            "schedule: a run needs at least 1 epoch of at least 1 step, got 0 of 1");
  EXPECT_EQ(error_of([] { LrSchedule({.kind = "step", .gamma = 0}, 0.1, 3, 1); }),
            "schedule.gamma must be positive, got 0");
}

// ---- JSON ----

TEST(ScheduleJson, OnlyTheKindsOwnFields) {
  EXPECT_EQ(schedule_to_json({}), R"({"kind":"none"})");
  EXPECT_EQ(schedule_to_json({.kind = "step", .gamma = 0.5, .step_size = 2}),
            R"({"gamma":0.5,"kind":"step","step_size":2,"unit":"epoch"})");
  EXPECT_EQ(schedule_to_json({.kind = "multistep", .milestones = {3, 6}}),
            R"({"gamma":0.1,"kind":"multistep","milestones":[3,6],"unit":"epoch"})");
  EXPECT_EQ(schedule_to_json({.kind = "cosine", .unit = "step", .warmup = 100, .min_lr = 1e-5}),
            R"({"kind":"cosine","min_lr":1e-05,"unit":"step","warmup":100,)"
            R"("warmup_start_factor":0.3333333333333333})");
  EXPECT_EQ(schedule_to_json({.kind = "onecycle", .max_lr = 0.01}),
            R"({"anneal_strategy":"cos","div_factor":25.0,"final_div_factor":10000.0,)"
            R"("kind":"onecycle","max_lr":0.01,"pct_start":0.3,"three_phase":false,)"
            R"("unit":"step"})");
  EXPECT_EQ(schedule_to_json({.kind = "plateau"}),
            R"({"cooldown":0,"eps":1e-08,"factor":0.1,"kind":"plateau","min_lr":0.0,)"
            R"("mode":"min","monitor":"test_loss","patience":10,"threshold":0.0001,)"
            R"("threshold_mode":"rel","unit":"epoch"})");
}

TEST(ScheduleJson, RoundTripOfEveryKind) {
  const ScheduleOptions all[] = {
      {},
      {.kind = "step", .unit = "step", .gamma = 0.7, .step_size = 30},
      {.kind = "multistep", .gamma = 1.0 / 3, .milestones = {1, 4, 9}},
      {.kind = "exponential", .gamma = 0.95},
      {.kind = "cosine", .warmup = 2, .warmup_start_factor = 0.01, .min_lr = 3e-7},
      {.kind = "onecycle",
       .max_lr = 0.3,
       .pct_start = 0.25,
       .anneal_strategy = "linear",
       .div_factor = 10,
       .final_div_factor = 100,
       .three_phase = true},
      {.kind = "plateau",
       .min_lr = 1e-6,
       .monitor = "test_accuracy",
       .mode = "max",
       .factor = 0.5,
       .patience = 2,
       .threshold = 0.01,
       .threshold_mode = "abs",
       .cooldown = 1,
       .eps = 0}};
  for (const ScheduleOptions& o : all) {
    const std::string text = schedule_to_json(o);
    ScheduleOptions back = schedule_from_json(text, "s.json");
    EXPECT_EQ(schedule_to_json(back), text);
    EXPECT_EQ(back.kind, o.kind);
    EXPECT_EQ(schedule_unit(back), schedule_unit(o));
    EXPECT_EQ(back.gamma, o.kind == "none" ? 0.1 : o.gamma) << text;
    EXPECT_EQ(back.milestones, o.milestones);
    EXPECT_EQ(back.warmup_start_factor, o.warmup_start_factor);
    EXPECT_EQ(back.min_lr, o.min_lr);
    EXPECT_EQ(back.max_lr, o.max_lr);
    EXPECT_EQ(back.three_phase, o.three_phase);
    EXPECT_EQ(back.monitor, o.monitor);
    EXPECT_EQ(back.eps, o.eps);
  }
}

TEST(ScheduleJson, MissingFieldsKeepTheirDefaults) {
  ScheduleOptions o = schedule_from_json(R"({"kind": "plateau", "patience": 3})", "s.json");
  EXPECT_EQ(o.patience, 3);
  EXPECT_EQ(o.factor, 0.1);
  EXPECT_EQ(o.threshold_mode, "rel");
  EXPECT_EQ(schedule_from_json("{}", "s.json").kind, "none");
}

TEST(ScheduleJson, Errors) {
  auto from = [](const char* text) {
    return error_of([&] { schedule_from_json(text, "s.json"); });
  };
  EXPECT_EQ(from(R"({"kind": "step", "step": 2})"), "s.json: unknown schedule field 'step'");
  EXPECT_EQ(from(R"({"kind": "step", "patience": 2})"),
            "s.json: schedule field 'patience' does not apply to the step schedule");
  EXPECT_EQ(from(R"({"unit": "epoch"})"),
            "s.json: schedule field 'unit' does not apply to the none schedule");
  EXPECT_EQ(from(R"({"kind": "warm"})"),
            "s.json: schedule kind must be none, step, multistep, exponential, cosine, onecycle "
            "or plateau, got 'warm'");
  EXPECT_EQ(from(R"({"kind": 3})"), "s.json: schedule field 'kind' has the wrong type: 3");
  EXPECT_EQ(from(R"({"kind": "step", "step_size": 2.5})"),
            "s.json: schedule field 'step_size' has the wrong type: 2.5");
  EXPECT_EQ(from(R"({"kind": "step", "gamma": "0.5"})"),
            R"(s.json: schedule field 'gamma' has the wrong type: "0.5")");
  EXPECT_EQ(from(R"({"kind": "multistep", "milestones": [3, 6.5]})"),
            "s.json: schedule field 'milestones' has the wrong type: [3,6.5]");
  EXPECT_EQ(from(R"({"kind": "multistep", "milestones": 3})"),
            "s.json: schedule field 'milestones' has the wrong type: 3");
  EXPECT_EQ(from(R"({"kind": "onecycle", "max_lr": 0.1, "three_phase": 1})"),
            "s.json: schedule field 'three_phase' has the wrong type: 1");
  EXPECT_EQ(from(R"({"kind": "multistep", "milestones": [6, 3]})"),
            "s.json: schedule.milestones must be strictly increasing, got 6, 3");
  EXPECT_EQ(from(R"({"kind": "onecycle"})"), "s.json: schedule.max_lr must be positive, got 0");
  EXPECT_EQ(from("[]"), "s.json: schedule must be a JSON object");
  EXPECT_THAT(from("{"), ::testing::StartsWith("s.json: schedule is not valid JSON: "));
}

TEST(Describe, OneLineEach) {
  EXPECT_EQ(describe_schedule({}), "constant lr");
  EXPECT_EQ(describe_schedule({.kind = "step", .gamma = 0.5, .step_size = 2}),
            "step per epoch: x0.5 every 2 epochs");
  EXPECT_EQ(describe_schedule({.kind = "multistep", .milestones = {3, 6}}),
            "multistep per epoch: x0.1 at epochs 3, 6");
  EXPECT_EQ(describe_schedule({.kind = "cosine", .warmup = 1, .min_lr = 1e-5}),
            "cosine per epoch: down to 1e-05 after 1 epoch warm-up from 0.3333 x lr");
  EXPECT_EQ(describe_schedule({.kind = "onecycle", .max_lr = 0.01}),
            "onecycle per step: 0.0004 up to 0.01 over 30% of the steps, down to 4e-08 (cos)");
  EXPECT_EQ(describe_schedule({.kind = "plateau", .factor = 0.5, .patience = 2}),
            "plateau per epoch: x0.5 (not below 0) after 3 epochs without a decrease of 0.0001 "
            "(rel) in test_loss");
}

// ---- state ----

// A schedule restored half way continues exactly as one that never stopped.
TEST(State, RestoredScheduleContinuesExactly) {
  const ScheduleOptions kinds[] = {
      {.kind = "cosine", .unit = "step", .warmup = 3, .min_lr = 1e-4},
      {.kind = "onecycle", .max_lr = 0.05, .three_phase = true},
      {.kind = "exponential", .gamma = 0.9},
      {.kind = "plateau", .factor = 0.5, .patience = 1, .cooldown = 2}};
  const double metrics[] = {1, 0.9, 0.95, 0.95, 0.95, 0.7, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9};
  for (const ScheduleOptions& o : kinds) {
    auto tick = [&](LrSchedule& s, int t) {
      if (o.kind == "plateau")
        s.step(metrics[t]);
      else
        s.step();
    };
    LrSchedule straight(o, 0.02, 4, 3), first(o, 0.02, 4, 3), second(o, 0.02, 4, 3);
    for (int t = 0; t < 5; ++t) tick(first, t);
    second.load_state(first.state_to_json(), "ckpt");
    EXPECT_EQ(second.ticks(), 5) << o.kind;
    for (int t = 0; t < 11; ++t) {
      if (t == 5) {
        EXPECT_EQ(second.state_to_json(), straight.state_to_json()) << o.kind;
      }
      if (t >= 5) tick(second, t);
      tick(straight, t);
    }
    EXPECT_EQ(second.lr(), straight.lr()) << o.kind;
    EXPECT_EQ(second.state_to_json(), straight.state_to_json()) << o.kind;
  }
}

TEST(State, PlateauCountersAndInfiniteBest) {
  LrSchedule s({.kind = "plateau", .factor = 0.5, .patience = 3, .cooldown = 2}, 0.1, 9, 1);
  json fresh = json::parse(s.state_to_json());
  EXPECT_EQ(fresh.at("best"), "inf");
  s.step(2.0);
  s.step(2.5);
  json j = json::parse(s.state_to_json());
  EXPECT_EQ(j.at("best"), 2.0);
  EXPECT_EQ(j.at("bad_epochs"), 1);
  EXPECT_EQ(j.at("ticks"), 2);
  LrSchedule back({.kind = "plateau", .factor = 0.5, .patience = 3, .cooldown = 2}, 0.1, 9, 1);
  back.load_state(fresh.dump(), "ckpt");
  EXPECT_EQ(back.state_to_json(), fresh.dump());
}

TEST(State, MismatchesAreErrors) {
  LrSchedule cosine({.kind = "cosine"}, 0.1, 4, 10);
  LrSchedule longer({.kind = "cosine"}, 0.1, 6, 10);
  EXPECT_EQ(error_of([&] { longer.load_state(cosine.state_to_json(), "c.safetensors"); }),
            "c.safetensors: the saved cosine schedule spans 4 epochs, this run 6 epochs: the "
            "length of a cosine or onecycle run cannot change");
  LrSchedule step({.kind = "step"}, 0.1, 4, 10), step_longer({.kind = "step"}, 0.1, 8, 10);
  EXPECT_EQ(error_of([&] { step_longer.load_state(step.state_to_json(), "c"); }), "(no error)");
  EXPECT_EQ(error_of([&] { step.load_state(cosine.state_to_json(), "c"); }),
            "c: the saved schedule is cosine, this run's is step");
  EXPECT_THAT(error_of([&] { step.load_state(R"({"kind": "step"})", "c"); }),
              HasSubstr("c: the schedule state is malformed: "));
  EXPECT_THAT(error_of([&] { step.load_state("nope", "c"); }),
              HasSubstr("c: the schedule state is malformed: "));
}

}  // namespace
}  // namespace scratchnet
