// Parity of the reference models (presets basic and bn) with PyTorch, from
// golden/models/model_<name>.safetensors (written by tools/golden_models.py; see
// golden/README-models.md for the file layout and how the values were made).
//
// The weights are not in the file: they are drawn here from the stored seed with Rng, in the
// same order and ranges as the generator draws them with its bit-exact port of Rng. On the
// stored batch of 8, in training mode, the test compares the logits and loss, then every
// parameter gradient (in full when small; else a strided sample plus the full sum, sum of |g|
// and sum of squares), then the losses of 5 optimiser steps from the same weights, the logits
// in eval mode after them and (bn) the running statistics. Tolerances use the measure of
// support/golden.h (largest error over the tensor's largest magnitude). Every check prints
// its largest relative error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scratchnet/io/safetensors.h"
#include "scratchnet/loss.h"
#include "scratchnet/model.h"
#include "scratchnet/presets.h"
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

constexpr double kLogitsTol = 1e-5;
constexpr double kGradTol = 1e-4;
constexpr double kTrainTol = 1e-4;  // 5-step losses, eval logits and running statistics after

const std::string kGoldenDir = std::string(SN_GOLDEN_DIR) + "/models";

// Everything the C++ side computes for one golden file, computed once per test binary.
struct ModelRun {
  std::string path;
  SafeTensors golden;
  std::map<std::string, std::vector<float>> init_heads;  // first values of every parameter
  Tensor logits;                                         // (8, 10) first training forward
  double loss = 0;
  std::map<std::string, Tensor> grads;    // of that forward's loss
  std::vector<double> losses;             // one per optimiser step
  Tensor eval_logits;                     // (8, 10) after the steps, eval mode
  std::map<std::string, Tensor> buffers;  // after the steps

  const Tensor& want(const std::string& name) const { return golden_tensor(golden, name, path); }
};

// Draws every parameter as tools/golden_models.py init_weights does: one Rng stream, layer by
// layer in state_dict order; Conv2d/Linear weight and bias ~ U(-b, b), b = 1/sqrt(fan_in) in
// float; BatchNorm weight and bias from the ranges in the file.
void init_like_generator(Sequential& model, uint64_t seed, const json& init) {
  Rng rng(seed);
  const float bn_w_lo = init.at("batchnorm_weight")[0], bn_w_hi = init.at("batchnorm_weight")[1];
  const float bn_b_lo = init.at("batchnorm_bias")[0], bn_b_hi = init.at("batchnorm_bias")[1];
  for (size_t i = 0; i < model.size(); ++i) {
    auto params = model.layer(i).params();
    if (params.empty()) continue;
    const bool bn = model.layer(i).kind().starts_with("BatchNorm");
    const Tensor& w = params[0].param->value;  // "weight" comes first
    const float bound = 1.0f / std::sqrt(static_cast<float>(w.numel() / w.dim(0)));
    for (auto& p : params) {
      const bool is_weight = p.name == "weight";
      float lo = bn ? (is_weight ? bn_w_lo : bn_b_lo) : -bound;
      float hi = bn ? (is_weight ? bn_w_hi : bn_b_hi) : bound;
      for (float& v : p.param->value) v = rng.uniform(lo, hi);
    }
  }
}

ModelRun compute(const std::string& name) {
  ModelRun r;
  r.path = kGoldenDir + "/model_" + name + ".safetensors";
  r.golden = read_safetensors(r.path);
  const uint64_t seed = std::stoull(golden_meta(r.golden, "weight_seed", r.path));
  const int steps = std::stoi(golden_meta(r.golden, "steps", r.path));

  Sequential model = make_preset(name);
  init_like_generator(model, seed, golden_meta_json(r.golden, "init", r.path));
  for (auto& p : model.params()) {
    const Tensor& v = p.param->value;
    r.init_heads[p.name].assign(v.begin(), v.begin() + std::min<int64_t>(8, v.numel()));
  }

  const Tensor& x = r.want("input");
  std::vector<int32_t> labels;
  for (float v : r.want("labels")) labels.push_back(static_cast<int32_t>(v));

  // Step 0's forward and backward are the single-step golden; then the optimiser steps on.
  auto opt = testing::optimizer_from_json(golden_meta_json(r.golden, "optimizer", r.path),
                                          {ParamGroup{.params = model.params()}});
  Tensor d_logits;
  for (int step = 0; step < steps; ++step) {
    opt->zero_grad();
    const Tensor& logits = model.forward(x, Mode::kTrain);
    double loss = cross_entropy_loss(logits, labels, &d_logits);
    model.backward(d_logits);
    if (step == 0) {
      r.logits = logits;
      r.loss = loss;
      for (auto& p : model.params()) r.grads[p.name] = p.param->grad;
    }
    r.losses.push_back(loss);
    opt->step();
  }
  r.eval_logits = model.forward(x, Mode::kEval);
  for (auto& b : model.buffers()) r.buffers[b.name] = *b.tensor;
  return r;
}

const ModelRun& run(const std::string& name) {
  static std::map<std::string, ModelRun> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, compute(name)).first;
  return it->second;
}

// The weights drawn here must be the generator's, bit for bit.
void check_init(const std::string& name) {
  const ModelRun& r = run(name);
  ASSERT_FALSE(r.init_heads.empty());
  for (const auto& [param, head] : r.init_heads) {
    const Tensor& want = r.want("init." + param + ".head");
    ASSERT_EQ(static_cast<int64_t>(head.size()), want.numel()) << param;
    for (size_t i = 0; i < head.size(); ++i)
      EXPECT_EQ(head[i], want[static_cast<int64_t>(i)]) << name << " " << param << "[" << i << "]";
  }
}

void check_forward(const std::string& name) {
  const ModelRun& r = run(name);
  double err = 0;
  EXPECT_TRUE(tensors_close(name + ": logits", r.logits, r.want("logits"), kLogitsTol, &err));
  report_rel_err(name + " logits", err, kLogitsTol);
  const double want_loss = r.want("loss")[0];
  const double loss_err = std::abs(r.loss - want_loss) / std::abs(want_loss);
  EXPECT_LE(loss_err, kLogitsTol) << name << ": loss " << r.loss << ", expected " << want_loss;
  report_rel_err(name + " loss", loss_err, kLogitsTol);
}

// |got - want| / scale, with a message when over kGradTol.
double check_scalar(const std::string& what, double got, double want, double scale) {
  const double err = std::abs(got - want) / scale;
  EXPECT_LE(err, kGradTol) << what << ": got " << got << ", expected " << want;
  return err;
}

void check_gradients(const std::string& name) {
  const ModelRun& r = run(name);
  const json zero_grads = golden_meta_json(r.golden, "zero_grads", r.path);
  const int64_t stride = std::stoll(golden_meta(r.golden, "sample_stride", r.path));
  const int64_t sample_above = std::stoll(golden_meta(r.golden, "sample_above", r.path));
  ASSERT_FALSE(r.grads.empty());
  for (const auto& [param, grad] : r.grads) {
    const std::string what = name + " grad " + param;
    const std::string key = "grad." + param;
    double err = 0;
    if (zero_grads.contains(param)) {
      // Zero in exact arithmetic (a bias feeding a BatchNorm): only rounding noise is allowed,
      // measured against the largest gradient of the layer's weight.
      double max_abs = 0;
      for (float v : grad) max_abs = std::max(max_abs, static_cast<double>(std::abs(v)));
      err = max_abs / zero_grads.at(param).get<double>();
      EXPECT_LE(err, kGradTol) << what << " should be zero, largest |value| " << max_abs;
    } else if (grad.numel() <= sample_above) {
      EXPECT_TRUE(tensors_close(what, grad, r.want(key), kGradTol, &err));
    } else {
      std::vector<float> sample;
      double sum = 0, sumabs = 0, sumsq = 0;
      for (int64_t i = 0; i < grad.numel(); ++i) {
        const double v = grad[i];
        if (i % stride == 0) sample.push_back(grad[i]);
        sum += v;
        sumabs += std::abs(v);
        sumsq += v * v;
      }
      const Tensor got_sample({static_cast<int64_t>(sample.size())}, sample);
      EXPECT_TRUE(
          tensors_close(what + " sample", got_sample, r.want(key + ".sample"), kGradTol, &err));
      const double want_sumabs = r.want(key + ".sumabs")[0];
      const double want_sumsq = r.want(key + ".sumsq")[0];
      err = std::max(err, check_scalar(what + " sum", sum, r.want(key + ".sum")[0], want_sumabs));
      err = std::max(err, check_scalar(what + " sum |g|", sumabs, want_sumabs, want_sumabs));
      err = std::max(err, check_scalar(what + " sum g^2", sumsq, want_sumsq, want_sumsq));
    }
    report_rel_err(what, err, kGradTol);
  }
}

void check_training(const std::string& name) {
  const ModelRun& r = run(name);
  const Tensor& want = r.want("train.losses");
  ASSERT_EQ(static_cast<int64_t>(r.losses.size()), want.numel());
  double worst = 0;
  for (size_t i = 0; i < r.losses.size(); ++i) {
    const double w = want[static_cast<int64_t>(i)];
    const double err = std::abs(r.losses[i] - w) / std::abs(w);
    EXPECT_LE(err, kTrainTol) << name << ": loss of step " << i << " " << r.losses[i]
                              << ", expected " << w;
    worst = std::max(worst, err);
  }
  report_rel_err(name + " losses of " + std::to_string(r.losses.size()) + " steps", worst,
                 kTrainTol);

  double err = 0;
  EXPECT_TRUE(tensors_close(name + ": eval logits after training", r.eval_logits,
                            r.want("train.eval_logits"), kTrainTol, &err));
  report_rel_err(name + " eval logits after the steps", err, kTrainTol);

  for (const auto& [buffer, value] : r.buffers) {
    EXPECT_TRUE(tensors_close(name + ": " + buffer + " after training", value,
                              r.want("train." + buffer), kTrainTol, &err));
    report_rel_err(name + " " + buffer, err, kTrainTol);
  }
  // Every buffer in the file was checked.
  size_t stored = 0;
  for (const auto& [key, t] : r.golden.tensors)
    if (key.starts_with("train.") && key != "train.losses" && key != "train.eval_logits") ++stored;
  EXPECT_EQ(stored, r.buffers.size()) << name << ": buffers in the golden file and the model";
}

TEST(ModelParity, BasicWeightsRegeneratedFromSeed) { check_init("basic"); }
TEST(ModelParity, BasicForward) { check_forward("basic"); }
TEST(ModelParity, BasicGradients) { check_gradients("basic"); }
TEST(ModelParity, BasicAdamFiveSteps) { check_training("basic"); }

TEST(ModelParity, BnWeightsRegeneratedFromSeed) { check_init("bn"); }
TEST(ModelParity, BnForward) { check_forward("bn"); }
TEST(ModelParity, BnGradients) { check_gradients("bn"); }
TEST(ModelParity, BnSgdMomentumFiveSteps) { check_training("bn"); }

}  // namespace
}  // namespace scratchnet
