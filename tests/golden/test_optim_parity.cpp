// Parity of the optimisers with torch.optim, from golden/models/optim.safetensors (written by
// tools/golden_models.py; see golden/README-models.md).
//
// Two parameters, p0 (3, 4) and p1 (4), start from stored values; each case feeds the same 5
// stored gradients to one optimiser configuration (described in the file's metadata, which
// the test builds the optimiser from) and compares both parameters after every step with
// tolerance kTol (the measure of support/golden.h). In "groups" cases each parameter is its
// own parameter group with the listed overrides. In "l1" cases the L1 penalty (l1_penalty,
// loss.h) of p0 is added before each step, and its value is compared too. Each case prints
// its largest relative error.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "scratchnet/io/safetensors.h"
#include "scratchnet/loss.h"
#include "support/golden.h"
#include "support/golden_model.h"

namespace scratchnet {
namespace {

using nlohmann::json;
using testing::golden_meta;
using testing::golden_meta_json;
using testing::golden_tensor;
using testing::report_rel_err;
using testing::tensors_close;

constexpr double kTol = 1e-5;
const std::string kPath = std::string(SN_GOLDEN_DIR) + "/models/optim.safetensors";
const std::vector<std::string> kParams = {"p0", "p1"};

const SafeTensors& golden() {
  static const SafeTensors file = read_safetensors(kPath);
  return file;
}

const json& cases() {
  static const json c = golden_meta_json(golden(), "cases", kPath);
  return c;
}

// The cases this file has a TEST for; AllGoldenCasesAreTested keeps it in step with the file.
const std::set<std::string> kTestedCases = {"sgd_plain",
                                            "sgd_momentum",
                                            "sgd_dampening",
                                            "sgd_nesterov",
                                            "sgd_weight_decay",
                                            "adam",
                                            "adam_weight_decay",
                                            "adamw",
                                            "sgd_groups",
                                            "adam_groups",
                                            "sgd_l1",
                                            "adam_l1"};

void check_case(const std::string& name) {
  ASSERT_TRUE(kTestedCases.contains(name)) << name << " is missing from kTestedCases";
  const json& c = cases().at(name);
  std::map<std::string, Parameter> params;
  for (const std::string& p : kParams) {
    params[p] = Parameter(golden_tensor(golden(), "init." + p, kPath).shape());
    params[p].value = golden_tensor(golden(), "init." + p, kPath);
  }
  std::vector<ParamGroup> groups;
  if (c.contains("groups")) {
    ASSERT_EQ(c.at("groups").size(), kParams.size());
    for (size_t i = 0; i < kParams.size(); ++i) {
      const json& g = c.at("groups")[i];
      ParamGroup group{.params = {{kParams[i], &params[kParams[i]]}}};
      if (g.contains("lr")) group.lr = g.at("lr").get<float>();
      if (g.contains("weight_decay")) group.weight_decay = g.at("weight_decay").get<float>();
      groups.push_back(std::move(group));
    }
  } else {
    ParamGroup group;
    for (const std::string& p : kParams) group.params.push_back({p, &params[p]});
    groups.push_back(std::move(group));
  }
  auto opt = testing::optimizer_from_json(c, std::move(groups));

  const int steps = std::stoi(golden_meta(golden(), "steps", kPath));
  double worst = 0;
  for (int step = 0; step < steps; ++step) {
    for (const std::string& p : kParams)
      params[p].grad = golden_tensor(golden(), "grad." + std::to_string(step) + "." + p, kPath);
    if (c.contains("l1")) {
      const double penalty = l1_penalty({{"p0", &params["p0"]}}, c.at("l1").get<float>());
      const std::string key = name + "." + std::to_string(step) + ".l1_penalty";
      double err = 0;
      EXPECT_TRUE(tensors_close(key, Tensor({1}, {static_cast<float>(penalty)}),
                                golden_tensor(golden(), key, kPath), kTol, &err));
      worst = std::max(worst, err);
    }
    opt->step();
    for (const std::string& p : kParams) {
      const std::string key = name + "." + std::to_string(step) + "." + p;
      double err = 0;
      EXPECT_TRUE(
          tensors_close(key, params[p].value, golden_tensor(golden(), key, kPath), kTol, &err));
      worst = std::max(worst, err);
    }
  }
  report_rel_err("optim " + name + " (" + std::to_string(steps) + " steps)", worst, kTol);
}

TEST(OptimParity, SgdPlain) { check_case("sgd_plain"); }
TEST(OptimParity, SgdMomentum) { check_case("sgd_momentum"); }
TEST(OptimParity, SgdDampening) { check_case("sgd_dampening"); }
TEST(OptimParity, SgdNesterov) { check_case("sgd_nesterov"); }
TEST(OptimParity, SgdWeightDecay) { check_case("sgd_weight_decay"); }
TEST(OptimParity, Adam) { check_case("adam"); }
TEST(OptimParity, AdamWeightDecay) { check_case("adam_weight_decay"); }
TEST(OptimParity, AdamW) { check_case("adamw"); }
TEST(OptimParity, SgdParamGroups) { check_case("sgd_groups"); }
TEST(OptimParity, AdamParamGroups) { check_case("adam_groups"); }
TEST(OptimParity, SgdL1Penalty) { check_case("sgd_l1"); }
TEST(OptimParity, AdamL1Penalty) { check_case("adam_l1"); }

TEST(OptimParity, AllGoldenCasesAreTested) {
  std::set<std::string> in_file;
  for (const auto& [name, c] : cases().items()) in_file.insert(name);
  EXPECT_EQ(in_file, kTestedCases);
}

}  // namespace
}  // namespace scratchnet
