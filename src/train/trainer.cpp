#include "scratchnet/train/trainer.h"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "scratchnet/check.h"
#include "scratchnet/data/loader.h"
#include "scratchnet/io/safetensors.h"
#include "scratchnet/layers/dropout.h"
#include "scratchnet/loss.h"
#include "scratchnet/model_spec.h"
#include "scratchnet/train/evaluate.h"
#include "scratchnet/train/prune.h"

namespace scratchnet {

using json = nlohmann::json;

namespace {

constexpr const char* kOptimizerPrefix = "optimizer.";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

json nan_as_null(double x) { return std::isnan(x) ? json(nullptr) : json(x); }

std::vector<std::pair<size_t, Dropout*>> dropouts(Sequential& model) {
  std::vector<std::pair<size_t, Dropout*>> found;
  for (size_t i = 0; i < model.size(); ++i)
    if (auto* d = dynamic_cast<Dropout*>(&model.layer(i))) found.emplace_back(i, d);
  return found;
}

EpochMetrics metrics_from_json(const json& j) {
  auto num = [&](const char* key) { return j.at(key).is_null() ? NAN : j.at(key).get<double>(); };
  EpochMetrics m;
  m.epoch = j.at("epoch").get<int64_t>();
  m.train_loss = num("train_loss");
  m.train_accuracy = num("train_accuracy");
  m.test_loss = num("test_loss");
  m.test_accuracy = num("test_accuracy");
  m.seconds = num("seconds");
  m.images_per_second = num("images_per_second");
  m.lr = num("lr");
  if (j.contains("val_loss")) m.val_loss = num("val_loss");
  if (j.contains("val_accuracy")) m.val_accuracy = num("val_accuracy");
  return m;
}

// The epoch's value of a plateau schedule's or early stopping's monitor.
double monitored(const EpochMetrics& m, const std::string& monitor) {
  if (monitor == "val_loss") return m.val_loss;
  if (monitor == "val_accuracy") return m.val_accuracy;
  if (monitor == "test_loss") return m.test_loss;
  if (monitor == "test_accuracy") return m.test_accuracy;
  if (monitor == "train_loss") return m.train_loss;
  return m.train_accuracy;
}

}  // namespace

std::string EpochMetrics::to_json() const {
  json j{{"epoch", epoch},
         {"train_loss", nan_as_null(train_loss)},
         {"train_accuracy", nan_as_null(train_accuracy)},
         {"test_loss", nan_as_null(test_loss)},
         {"test_accuracy", nan_as_null(test_accuracy)},
         {"seconds", seconds},
         {"images_per_second", images_per_second},
         {"lr", lr}};
  if (!std::isnan(val_accuracy)) {
    j["val_loss"] = nan_as_null(val_loss);
    j["val_accuracy"] = val_accuracy;
  }
  return j.dump();
}

Trainer::Trainer(Sequential& model, const Dataset& train, const Dataset* test, Recipe recipe)
    : model_(model), recipe_(std::move(recipe)), train_(&train), test_(test) {
  check_recipe(recipe_);
  if (recipe_.validation > 0) {
    split_ = take_validation_split(train, recipe_.validation, recipe_.seed);
    train_ = &split_.train;
    validation_ = &split_.validation;
  }
  if (validation_ || recipe_.early_stop.active()) {
    SN_CHECK(test != nullptr || !recipe_.early_stop.monitor.starts_with("test_"),
             "early stopping monitors {}, but there is no test set", recipe_.early_stop.monitor);
    best_ = std::make_unique<EarlyStopping>(recipe_.early_stop);
  }
  SN_CHECK(model.built(), "the model must be built before training");
  SN_CHECK(train.sample_shape() == model.input_shape(),
           "{}: images of shape {} do not fit a model built for {}", train.source,
           shape_str(train.sample_shape()), shape_str(model.input_shape()));
  const FinetuneOptions& finetune = recipe_.finetune;
  if (finetune.active()) apply_freeze(model_, frozen_layers(model_, finetune, 0));
  build_optimizer();
  // As BatchLoader counts them: the last partial batch is kept.
  steps_per_epoch_ = (train_->size() + recipe_.batch_size - 1) / recipe_.batch_size;
  const ScheduleOptions& schedule = recipe_.schedule;
  if (schedule.kind != "none") {
    SN_CHECK(!schedule.cycle_momentum,
             "schedule.cycle_momentum is not supported by the trainer: the optimisers cannot "
             "change momentum during a run");
    SN_CHECK(
        schedule.kind != "plateau" || test != nullptr || !schedule.monitor.starts_with("test_"),
        "the plateau schedule monitors {}, but there is no test set", schedule.monitor);
    // One schedule per parameter group, from the group's own lr (PyTorch's base_lrs).
    for (size_t g = 0; g < optimizer_->num_groups(); ++g) {
      const double base = Optimizer::widen(optimizer_->lr(g));
      ScheduleOptions options = schedule;
      options.max_lr *= base / Optimizer::widen(recipe_.lr);
      schedules_.push_back(
          std::make_unique<LrSchedule>(options, base, recipe_.epochs, steps_per_epoch_));
    }
    set_scheduled_lrs();
  }
  // Dropout streams follow the run's seed (a checkpoint restores them).
  for (auto& [index, dropout] : dropouts(model_))
    dropout->rng().seed_with(recipe_.seed * 1000003 + index);
}

Trainer::~Trainer() = default;

void Trainer::build_optimizer() {
  if (!recipe_.finetune.backbone_lr) {
    optimizer_ = make_optimizer(recipe_, model_.params());
    return;
  }
  // The backbone's layers at their own lr, the head's at the recipe's.
  const size_t head = head_index(model_);
  std::vector<ParamGroup> groups = {{.params = {}, .lr = *recipe_.finetune.backbone_lr},
                                    {.params = {}}};
  for (const NamedParameter& p : model_.params())
    groups[std::stoul(p.name) < head ? 0 : 1].params.push_back(p);
  optimizer_ = make_optimizer(recipe_, std::move(groups));
}

void Trainer::set_scheduled_lrs() {
  for (size_t g = 0; g < schedules_.size(); ++g)
    optimizer_->set_group_lr(g, static_cast<float>(schedules_[g]->lr()));
}

size_t Trainer::start_epoch_layers(int64_t epoch) {
  if (recipe_.finetune.active())
    apply_freeze(model_, frozen_layers(model_, recipe_.finetune, epoch));
  l1_weights_.clear();
  for (const NamedParameter& p : prunable_weights(model_))
    if (p.param->trainable && recipe_.l1 > 0) l1_weights_.push_back(p);
  // Backward stops at the first layer that trains: nothing below it needs a gradient.
  for (size_t i = 0; i < model_.size(); ++i)
    for (const NamedParameter& p : model_.layer(i).params())
      if (p.param->trainable) return i;
  return 0;
}

void Trainer::fit(const TrainCallbacks& callbacks, int64_t until_epoch) {
  const int64_t last = until_epoch < 0 ? recipe_.epochs : std::min(until_epoch, recipe_.epochs);
  BatchLoader loader(*train_, {.batch_size = recipe_.batch_size,
                               .shuffle = true,
                               .seed = recipe_.seed,
                               .preprocess = recipe_.preprocess,
                               .augment = recipe_.augment});
  const CrossEntropyOptions loss_options{.label_smoothing = recipe_.label_smoothing};
  Tensor d_logits;
  std::vector<int32_t> predicted;
  for (int64_t epoch = epochs_done(); epoch < last && !stopped_early(); ++epoch) {
    auto start = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    const size_t down_to = start_epoch_layers(epoch);
    StepInfo step{
        .epoch = epoch + 1, .epochs = recipe_.epochs, .steps = loader.batches_per_epoch()};
    double loss_sum = 0, last_lr = 0;
    int64_t seen = 0, correct = 0;
    while (const Batch* batch = loader.next()) {
      const Tensor& logits = model_.forward(batch->images, Mode::kTrain);
      double loss = cross_entropy_loss(logits, batch->labels, &d_logits, loss_options);
      SN_CHECK(std::isfinite(loss), "training diverged: the loss is {} at epoch {}, step {}", loss,
               step.epoch, step.step + 1);
      argmax_rows(predicted, logits);
      int64_t n = logits.dim(0);
      for (int64_t i = 0; i < n; ++i) correct += predicted[i] == batch->labels[i];
      optimizer_->zero_grad();
      model_.backward(d_logits, down_to, /*input_grad=*/false);
      if (!l1_weights_.empty()) loss += l1_penalty(l1_weights_, recipe_.l1);
      // The lr is set before each step (never after the last one: one-cycle's lr past its
      // end is meaningless, and may be negative).
      set_scheduled_lrs();
      const float lr = optimizer_->lr(optimizer_->num_groups() - 1);  // the head's
      optimizer_->step();
      for (auto& schedule : schedules_)
        if (schedule->per_step()) schedule->step();
      step.lr = last_lr = Optimizer::widen(lr);
      loss_sum += loss * static_cast<double>(n);
      seen += n;
      ++step.step;
      if (callbacks.on_step) {
        step.loss = loss_sum / seen;
        step.accuracy = static_cast<double>(correct) / seen;
        step.seconds = seconds_since(start);
        step.images_per_second = seen / std::max(step.seconds, 1e-9);
        callbacks.on_step(step);
      }
    }
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.seconds = seconds_since(start);
    m.train_loss = loss_sum / seen;
    m.train_accuracy = static_cast<double>(correct) / seen;
    m.images_per_second = seen / std::max(m.seconds, 1e-9);
    m.lr = last_lr;  // 0.001, not 0.0010000000474974513
    m.test_loss = m.test_accuracy = NAN;
    if (test_) {
      last_test_ = evaluate(model_, *test_, recipe_.preprocess);
      m.test_loss = last_test_.loss;
      m.test_accuracy = last_test_.accuracy;
    }
    if (validation_) {
      const EvalResult val = evaluate(model_, *validation_, recipe_.preprocess);
      m.val_loss = val.loss;
      m.val_accuracy = val.accuracy;
    }
    for (auto& schedule : schedules_) {
      if (schedule->per_step()) continue;
      if (recipe_.schedule.kind == "plateau")
        schedule->step(monitored(m, recipe_.schedule.monitor));
      else
        schedule->step();
    }
    if (best_) best_->update(m.epoch, monitored(m, recipe_.early_stop.monitor));
    history_.push_back(m);
    if (callbacks.on_epoch) callbacks.on_epoch(m);
  }
}

void Trainer::save_checkpoint(const std::string& path, const ModelInfo& info) {
  SafeTensors file = model_to_safetensors(model_, info);
  for (const auto& s : optimizer_->state()) file.tensors[kOptimizerPrefix + s.name] = *s.tensor;
  json history = json::array();
  for (const auto& m : history_) history.push_back(json::parse(m.to_json()));
  json streams = json::object();
  for (auto& [index, dropout] : dropouts(model_)) {
    json words = json::array();
    for (uint64_t w : dropout->rng().state()) words.push_back(std::to_string(w));
    streams[std::to_string(index)] = words;
  }
  file.metadata["recipe"] = recipe_to_json(recipe_);
  json trainer = {{"epochs_done", epochs_done()},
                  {"optimizer", optimizer_->kind()},
                  {"optimizer_steps", optimizer_->steps()},
                  {"history", history},
                  {"dropout_streams", streams}};
  // The head's schedule (the recipe's lr) and, with a backbone lr, the backbone's.
  if (!schedules_.empty()) trainer["schedule"] = json::parse(schedules_.back()->state_to_json());
  if (schedules_.size() > 1)
    trainer["backbone_schedule"] = json::parse(schedules_[0]->state_to_json());
  if (best_) trainer["early_stop"] = json::parse(best_->state_to_json());
  if (validation_) trainer["held_out"] = split_.held_out;
  file.metadata["trainer"] = trainer.dump();
  write_safetensors(path, file);
}

void Trainer::load_checkpoint(const std::string& path) {
  SafeTensors file = read_safetensors(path);
  auto trainer_it = file.metadata.find("trainer");
  SN_CHECK(trainer_it != file.metadata.end(),
           "{}: not a checkpoint (no training state); a model file cannot resume a run", path);
  LoadedModel saved = model_from_safetensors(file, path);
  SN_CHECK(model_to_spec(saved.model) == model_to_spec(model_),
           "{}: the checkpoint's architecture differs from the model being trained", path);
  auto mine = model_.params();
  auto theirs = saved.model.params();
  for (size_t i = 0; i < mine.size(); ++i) mine[i].param->value = theirs[i].param->value;
  auto my_buffers = model_.buffers();
  auto their_buffers = saved.model.buffers();
  for (size_t i = 0; i < my_buffers.size(); ++i) *my_buffers[i].tensor = *their_buffers[i].tensor;

  json state;
  try {
    state = json::parse(trainer_it->second);
    history_.clear();
    for (const auto& m : state.at("history")) history_.push_back(metrics_from_json(m));
    SN_CHECK(epochs_done() == state.at("epochs_done").get<int64_t>(),
             "{}: the checkpoint's history does not match its epoch count", path);
    if (recipe_.finetune.unfreeze_every > 0 && epochs_done() > 0) {
      // The optimiser holds state for the layers that trained in the last epoch done.
      apply_freeze(model_, frozen_layers(model_, recipe_.finetune, epochs_done() - 1));
      build_optimizer();
    }
    SN_CHECK(state.at("optimizer").get<std::string>() == optimizer_->kind(),
             "{}: the checkpoint was trained with {}, this run uses {}", path,
             state.at("optimizer").get<std::string>(), optimizer_->kind());
    for (const auto& s : optimizer_->state()) {
      auto it = file.tensors.find(kOptimizerPrefix + s.name);
      SN_CHECK(it != file.tensors.end() && it->second.shape() == s.tensor->shape(),
               "{}: optimizer state '{}' is missing or has the wrong shape", path, s.name);
      *s.tensor = it->second;
    }
    optimizer_->set_steps(state.at("optimizer_steps").get<int64_t>());
    const json& streams = state.at("dropout_streams");
    for (auto& [index, dropout] : dropouts(model_)) {
      const json& words = streams.at(std::to_string(index));
      std::array<uint64_t, 4> s{};
      for (size_t w = 0; w < 4; ++w) s[w] = std::stoull(words.at(w).get<std::string>());
      dropout->rng().set_state(s);
    }
    SN_CHECK(state.contains("schedule") == !schedules_.empty(),
             "{}: the checkpoint was trained {} a learning-rate schedule, this run {}", path,
             state.contains("schedule") ? "with" : "without",
             schedules_.empty() ? "has none" : "has a " + recipe_.schedule.kind + " schedule");
    for (size_t g = 0; g < schedules_.size(); ++g) {
      LrSchedule& schedule = *schedules_[g];
      const bool backbone = g + 1 < schedules_.size();
      schedule.load_state(state.at(backbone ? "backbone_schedule" : "schedule").dump(), path);
      const int64_t ticks = epochs_done() * (schedule.per_step() ? steps_per_epoch_ : 1);
      SN_CHECK(schedule.ticks() == ticks,
               "{}: the schedule state is at tick {}, but {} finished epochs put it at {}", path,
               schedule.ticks(), epochs_done(), ticks);
    }
    set_scheduled_lrs();
    SN_CHECK(state.contains("early_stop") == (best_ != nullptr),
             "{}: the checkpoint was trained {} a validation set or early stopping, this run {}",
             path, state.contains("early_stop") ? "with" : "without",
             best_ ? "has one" : "has neither");
    if (best_) best_->load_state(state.at("early_stop").dump(), path);
    SN_CHECK(!validation_ || state.at("held_out").get<std::vector<int64_t>>() == split_.held_out,
             "{}: the checkpoint held out other validation images than this run: the training "
             "set, the validation fraction or the seed differ",
             path);
  } catch (const json::exception& e) {
    fail("{}: the training state is malformed: {}", path, e.what());
  }
}

}  // namespace scratchnet
