#include "models/blend.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string_view>
#include <unordered_map>

namespace streamrec::models {

std::vector<double> ListProbabilities(const std::vector<ScoredItem>& list, ScoreScale scale) {
  std::vector<double> p(list.size(), 0.0);
  double sum = 0;
  if (scale == ScoreScale::kLogit) {
    double top = -INFINITY;
    for (const auto& item : list) top = std::max(top, item.score);
    for (size_t i = 0; i < list.size(); ++i) sum += p[i] = std::exp(list[i].score - top);
  } else {
    for (size_t i = 0; i < list.size(); ++i) sum += p[i] = std::max(0.0, list[i].score);
  }
  if (!(sum > 0)) {
    // Nothing to weigh by (all votes zero): fall back to a uniform share.
    std::fill(p.begin(), p.end(), 1.0 / double(list.size()));
    return p;
  }
  for (double& v : p) v /= sum;
  return p;
}

std::vector<ScoredItem> BlendLists(std::span<const std::vector<ScoredItem>> lists,
                                   std::span<const ScoreScale> scales,
                                   std::span<const double> weights, size_t n) {
  assert(lists.size() == scales.size());
  assert(weights.empty() || weights.size() == lists.size());
  const auto weight_of = [&](size_t m) { return weights.empty() ? 1.0 : weights[m]; };
  double present = 0;
  for (size_t m = 0; m < lists.size(); ++m) present += lists[m].empty() ? 0 : weight_of(m);
  if (!(present > 0) || n == 0) return {};
  std::unordered_map<std::string_view, double> mixture;
  for (size_t m = 0; m < lists.size(); ++m) {
    if (lists[m].empty()) continue;
    const double weight = weight_of(m) / present;
    const auto p = ListProbabilities(lists[m], scales[m]);
    for (size_t i = 0; i < p.size(); ++i) mixture[lists[m][i].item_id] += weight * p[i];
  }
  std::vector<ScoredItem> out;
  out.reserve(mixture.size());
  for (const auto& [item, score] : mixture) out.push_back({std::string(item), score});
  KeepBest(out, n);
  return out;
}

}  // namespace streamrec::models
