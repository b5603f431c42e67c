#include "scratchnet/train/prune.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "scratchnet/check.h"

namespace scratchnet {

namespace {

// The prunable weights with the layer each belongs to.
struct Prunable {
  NamedParameter weight;
  std::string kind;
};

std::vector<Prunable> find_prunable(Sequential& model) {
  std::vector<Prunable> found;
  for (size_t i = 0; i < model.size(); ++i) {
    const std::string kind = model.layer(i).kind();
    if (kind != "Conv2d" && kind != "Linear") continue;
    for (const NamedParameter& p : model.layer(i).params())
      if (p.name == "weight") found.push_back({{fmt::format("{}.{}", i, p.name), p.param}, kind});
  }
  return found;
}

// How many of n weights a sparsity prunes: round(s * n), half to even, like Python's round.
int64_t prune_count(double sparsity, int64_t n) {
  return static_cast<int64_t>(std::nearbyint(sparsity * static_cast<double>(n)));
}

// One weight's place: which tensor, which flat index, and its magnitude.
struct Entry {
  float magnitude;
  uint32_t tensor;
  int64_t index;
};

// Smallest magnitude first; ties by position (earlier tensor, then lower index).
bool before(const Entry& a, const Entry& b) {
  if (a.magnitude != b.magnitude) return a.magnitude < b.magnitude;
  if (a.tensor != b.tensor) return a.tensor < b.tensor;
  return a.index < b.index;
}

// Marks the `count` smallest entries of [first, last) as pruned in their masks.
void prune_smallest(std::vector<Entry>::iterator first, std::vector<Entry>::iterator last,
                    int64_t count, std::vector<PruneMask>& masks) {
  if (count <= 0) return;
  std::nth_element(first, first + (count - 1), last, before);
  for (auto it = first; it != first + count; ++it) masks[it->tensor].keep.data()[it->index] = 0.0f;
}

}  // namespace

void check_prune_options(const PruneOptions& options) {
  SN_CHECK(options.sparsity >= 0 && options.sparsity < 1,
           "prune: sparsity must be in [0, 1), got {}", options.sparsity);
}

std::vector<NamedParameter> prunable_weights(Sequential& model) {
  std::vector<NamedParameter> found;
  for (const Prunable& p : find_prunable(model)) found.push_back(p.weight);
  return found;
}

int64_t PruneMask::pruned() const {
  int64_t n = 0;
  for (int64_t i = 0; i < keep.numel(); ++i) n += keep.data()[i] == 0.0f;
  return n;
}

std::vector<PruneMask> prune_by_magnitude(Sequential& model, const PruneOptions& options) {
  check_prune_options(options);
  std::vector<PruneMask> masks;
  std::vector<Entry> entries;
  std::vector<size_t> starts;  // entries of mask t: [starts[t], starts[t + 1])
  for (const NamedParameter& p : prunable_weights(model)) {
    const Tensor& w = p.param->value;
    const auto t = static_cast<uint32_t>(masks.size());
    starts.push_back(entries.size());
    for (int64_t i = 0; i < w.numel(); ++i) {
      SN_CHECK(std::isfinite(w.data()[i]), "prune: {} has a non-finite value ({}) at index {}",
               p.name, w.data()[i], i);
      entries.push_back({std::fabs(w.data()[i]), t, i});
    }
    masks.push_back({p.name, p.param, Tensor::full(w.shape(), 1.0f)});
  }
  starts.push_back(entries.size());
  if (options.scope == PruneScope::kGlobal) {
    prune_smallest(entries.begin(), entries.end(),
                   prune_count(options.sparsity, static_cast<int64_t>(entries.size())), masks);
  } else {
    for (size_t t = 0; t < masks.size(); ++t)
      prune_smallest(entries.begin() + starts[t], entries.begin() + starts[t + 1],
                     prune_count(options.sparsity, masks[t].keep.numel()), masks);
  }
  apply_masks(masks);
  return masks;
}

void apply_masks(const std::vector<PruneMask>& masks) {
  for (const PruneMask& m : masks) {
    float* w = m.param->value.data();
    const float* keep = m.keep.data();
    for (int64_t i = 0; i < m.keep.numel(); ++i)
      if (keep[i] == 0.0f) w[i] = 0.0f;
  }
}

SparsityReport sparsity_report(Sequential& model) {
  SparsityReport report;
  for (const Prunable& p : find_prunable(model)) {
    TensorSparsity s{p.weight.name, p.kind};
    const Tensor& w = p.weight.param->value;
    s.count = w.numel();
    for (int64_t i = 0; i < s.count; ++i) s.zeros += w.data()[i] == 0.0f;
    report.zeros += s.zeros;
    report.count += s.count;
    report.layers.push_back(std::move(s));
  }
  return report;
}

}  // namespace scratchnet
