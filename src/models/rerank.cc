#include "models/rerank.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string_view>
#include <unordered_map>

namespace streamrec::models {
namespace {

using common::Result;
using common::Status;

// Rank of an item a member did not list: past the kBlendDepth items each member is asked for
// (ranks of longer lists, n > kBlendDepth, are capped below it).
constexpr float kUnlisted = float(2 * kBlendDepth);
// Distance from the session's end of an item not in the session (distances are capped below).
constexpr float kNotInSession = 1000;

Status XgbError(const char* what) {
  return Status::Internal(std::string("xgboost: ") + what + ": " + XGBGetLastError());
}

// The booster's trees, walked here (in less than half the time of XGBoost's in-place prediction
// for 30 rows, lock-free), laid out as complete binary trees (a leaf above the bottom becomes a
// split that always goes left), so that a walk is a fixed number of branch-free steps on flat
// arrays, tree by tree over all rows.
struct Forest {
  struct Tree {
    uint32_t depth = 0;  // levels of splits
    size_t splits = 0;   // offset into the split arrays (2^depth - 1 of them)
    size_t leaves = 0;   // offset into `leaf` (2^depth of them)
  };
  std::vector<Tree> trees;
  std::vector<uint32_t> feature;
  std::vector<float> threshold;       // x < threshold goes left
  std::vector<uint8_t> default_left;  // where a missing (NaN) value goes
  std::vector<float> leaf;
  float base_score = 0;

  //! The margin of each of `count` rows of `width` features.
  void Predict(const float* rows, size_t count, size_t width, float* out) const {
    std::fill(out, out + count, base_score);
    std::vector<uint32_t> at(count);
    for (const Tree& tree : trees) {
      std::fill(at.begin(), at.end(), 0);
      for (uint32_t level = 0; level < tree.depth; ++level) {
        for (size_t r = 0; r < count; ++r) {
          const size_t n = tree.splits + at[r];
          const float x = rows[r * width + feature[n]];
          // Bitwise, not ||: no branch to mispredict.
          const unsigned left = unsigned(x < threshold[n]) | (default_left[n] & unsigned(x != x));
          at[r] = 2 * at[r] + 2 - left;
        }
      }
      const uint32_t first_leaf = (1u << tree.depth) - 1;
      for (size_t r = 0; r < count; ++r) out[r] += leaf[tree.leaves + at[r] - first_leaf];
    }
  }
};

// The trees of a gbtree booster from its JSON model (XGBoost 1.x schema).
Result<Forest> ReadForest(BoosterHandle booster, size_t features) {
  bst_ulong length = 0;
  const char* bytes = nullptr;
  if (XGBoosterSaveModelToBuffer(booster, "{\"format\": \"json\"}", &length, &bytes) != 0) {
    return XgbError("model");
  }
  auto invalid = [](const std::string& why) {
    return Status::Invalid("invalid_rerank", "rerank model: " + why, "members");
  };
  boost::system::error_code ec;
  const auto model = boost::json::parse(boost::json::string_view(bytes, length), ec);
  if (ec) return invalid("not JSON");
  try {
    const auto& learner = model.at("learner").as_object();
    const auto& booster_json = learner.at("gradient_booster").as_object();
    if (booster_json.at("name").as_string() != "gbtree") return invalid("not a gbtree booster");
    // Margins summed over all trees are the prediction only for a ranking objective.
    if (learner.at("objective").at("name").as_string() != "rank:pairwise") {
      return invalid("not a rank:pairwise model");
    }
    Forest forest;
    forest.base_score =
        std::stof(std::string(learner.at("learner_model_param").at("base_score").as_string()));
    for (const auto& tree_value : booster_json.at("model").at("trees").as_array()) {
      const auto& tree = tree_value.as_object();
      const auto& left = tree.at("left_children").as_array();
      const auto& right = tree.at("right_children").as_array();
      const auto& feature = tree.at("split_indices").as_array();
      const auto& value = tree.at("split_conditions").as_array();
      const auto& default_left = tree.at("default_left").as_array();
      const auto& split_type = tree.at("split_type").as_array();
      const size_t n = left.size();
      if (right.size() != n || feature.size() != n || value.size() != n ||
          default_left.size() != n || split_type.size() != n || n == 0) {
        return invalid("a tree's node arrays differ in length");
      }
      // Depth of each node (children come after their parent), checking the links.
      std::vector<uint32_t> depth(n, 0);
      uint32_t deepest = 0;
      for (size_t i = 0; i < n; ++i) {
        const int64_t l = left[i].to_number<int64_t>(), r = right[i].to_number<int64_t>();
        if (l < 0) continue;
        if (split_type[i].to_number<int64_t>() != 0) return invalid("categorical split");
        if (l <= int64_t(i) || l >= int64_t(n) || r <= int64_t(i) || r >= int64_t(n) || l == r ||
            depth[size_t(l)] != 0 || depth[size_t(r)] != 0) {
          return invalid("a child out of range or with two parents");
        }
        const int64_t f = feature[i].to_number<int64_t>();
        if (f < 0 || size_t(f) >= features) return invalid("feature out of range");
        depth[size_t(l)] = depth[size_t(r)] = depth[i] + 1;
        deepest = std::max(deepest, depth[i] + 1);
      }
      if (deepest > 12) return invalid("a tree deeper than 12 (this ranker trains depth 6)");
      Forest::Tree laid{deepest, forest.threshold.size(), forest.leaf.size()};
      const size_t splits = (size_t{1} << deepest) - 1;
      forest.feature.resize(laid.splits + splits, 0);
      forest.threshold.resize(laid.splits + splits, INFINITY);
      forest.default_left.resize(laid.splits + splits, 1);
      forest.leaf.resize(laid.leaves + splits + 1, 0);
      // XGBoost node `node` at complete-tree position `at` (children of p: 2p + 1, 2p + 2).
      std::function<void(size_t, size_t, uint32_t)> place = [&](size_t node, size_t at,
                                                                uint32_t level) {
        const int64_t l = left[node].to_number<int64_t>();
        if (level == deepest) {
          forest.leaf[laid.leaves + at - splits] = value[node].to_number<float>();
          return;
        }
        if (l < 0) {  // a leaf above the bottom: always left (the defaults), same leaf below
          place(node, 2 * at + 1, level + 1);
          place(node, 2 * at + 2, level + 1);
          return;
        }
        forest.feature[laid.splits + at] = uint32_t(feature[node].to_number<int64_t>());
        forest.threshold[laid.splits + at] = value[node].to_number<float>();
        forest.default_left[laid.splits + at] = default_left[node].to_number<int64_t>() != 0;
        place(size_t(l), 2 * at + 1, level + 1);
        place(size_t(right[node].to_number<int64_t>()), 2 * at + 2, level + 1);
      };
      place(0, 0, 0);
      forest.trees.push_back(laid);
    }
    return forest;
  } catch (const std::exception& e) {
    return invalid(e.what());
  }
}

}  // namespace

size_t RerankFeatureCount(size_t members) { return 2 * members + 4; }

RerankCandidates RerankFeatures(std::span<const std::vector<ScoredItem>> lists,
                                std::span<const ScoreScale> scales, std::span<const double> weights,
                                std::span<const std::string> prefix, size_t n) {
  RerankCandidates out;
  out.items = BlendLists(lists, scales, weights, std::max(n, kRerankCandidates));
  const size_t width = RerankFeatureCount(lists.size());
  out.features.assign(out.items.size() * width, 0.0f);
  std::unordered_map<std::string_view, size_t> row_of;
  for (size_t r = 0; r < out.items.size(); ++r) {
    row_of.emplace(out.items[r].item_id, r);
    float* row = &out.features[r * width];
    for (size_t m = 0; m < lists.size(); ++m) row[2 * m + 1] = kUnlisted;
    const size_t tail = 2 * lists.size();
    row[tail] = float(out.items[r].score);
    row[tail + 2] = kNotInSession;
    row[tail + 3] = float(prefix.size());
  }
  for (size_t m = 0; m < lists.size(); ++m) {
    const auto p = ListProbabilities(lists[m], scales[m]);
    for (size_t i = 0; i < p.size(); ++i) {
      auto it = row_of.find(lists[m][i].item_id);
      if (it == row_of.end()) continue;
      float* row = &out.features[it->second * width];
      row[2 * m] = float(p[i]);
      row[2 * m + 1] = std::min({row[2 * m + 1], float(i), kUnlisted - 1});
    }
  }
  const size_t tail = 2 * lists.size();
  for (size_t j = 0; j < prefix.size(); ++j) {  // newest last: its distance wins
    auto it = row_of.find(prefix[j]);
    if (it == row_of.end()) continue;
    float* row = &out.features[it->second * width];
    row[tail + 1] = 1;
    row[tail + 2] = std::min(float(prefix.size() - 1 - j), kNotInSession - 1);
  }
  return out;
}

struct Reranker::Impl {
  BoosterHandle booster = nullptr;  // kept for Save
  Forest forest;                    // what Rerank walks
  size_t features = 0;
  size_t groups = 0;
  ~Impl() {
    if (booster) XGBoosterFree(booster);
  }
};

Reranker::Reranker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reranker::~Reranker() = default;
Reranker::Reranker(Reranker&&) noexcept = default;
Reranker& Reranker::operator=(Reranker&&) noexcept = default;

size_t Reranker::features() const { return impl_->features; }
size_t Reranker::groups_trained() const { return impl_->groups; }

Result<Reranker> Reranker::Train(std::span<const RerankCandidates> groups,
                                 std::span<const std::string> targets,
                                 const RerankerOptions& options) {
  // `no_data` means only that nothing could be learned: the 2-fold check leaves such a half in
  // the blend's order, while malformed candidates must stop training.
  auto invalid = [](const std::string& reason, const std::string& why) {
    return Status::Invalid(reason, "--rerank: " + why, "select");
  };
  if (groups.size() != targets.size()) return invalid("invalid_candidates", "one target per group");
  auto impl = std::make_unique<Impl>();
  std::vector<float> rows, labels;
  std::vector<unsigned> sizes;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& group = groups[g];
    if (group.items.empty()) continue;
    const size_t width = group.features.size() / group.items.size();
    if (impl->features == 0) impl->features = width;
    if (width != impl->features || width * group.items.size() != group.features.size()) {
      return invalid("invalid_candidates", "feature rows of different widths");
    }
    const auto hit = std::find_if(group.items.begin(), group.items.end(),
                                  [&](const ScoredItem& s) { return s.item_id == targets[g]; });
    if (hit == group.items.end()) continue;
    rows.insert(rows.end(), group.features.begin(), group.features.end());
    for (const auto& item : group.items) labels.push_back(&item == &*hit ? 1.0f : 0.0f);
    sizes.push_back(unsigned(group.items.size()));
  }
  if (sizes.empty()) {
    return invalid("no_data", "no validation case has its next item among the candidates");
  }
  impl->groups = sizes.size();

  DMatrixHandle matrix = nullptr;
  if (XGDMatrixCreateFromMat(rows.data(), labels.size(), impl->features, NAN, &matrix) != 0) {
    return XgbError("matrix");
  }
  struct MatrixGuard {
    DMatrixHandle h;
    ~MatrixGuard() { XGDMatrixFree(h); }
  } guard{matrix};
  if (XGDMatrixSetFloatInfo(matrix, "label", labels.data(), labels.size()) != 0 ||
      XGDMatrixSetUIntInfo(matrix, "group", sizes.data(), sizes.size()) != 0) {
    return XgbError("labels");
  }
  if (XGBoosterCreate(&matrix, 1, &impl->booster) != 0) return XgbError("booster");
  const std::pair<const char*, std::string> params[] = {
      {"objective", "rank:pairwise"},
      {"tree_method", "hist"},
      {"eta", std::to_string(options.eta)},
      {"max_depth", std::to_string(options.max_depth)},
      {"subsample", std::to_string(options.subsample)},
      {"colsample_bytree", "0.8"},
      {"nthread", std::to_string(options.threads)},
      {"seed", std::to_string(options.seed)},
      {"verbosity", "0"},
  };
  for (const auto& [key, value] : params) {
    if (XGBoosterSetParam(impl->booster, key, value.c_str()) != 0) return XgbError(key);
  }
  for (int round = 0; round < options.rounds; ++round) {
    if (XGBoosterUpdateOneIter(impl->booster, round, matrix) != 0) return XgbError("training");
  }
  auto forest = ReadForest(impl->booster, impl->features);
  if (!forest.ok()) return forest.status();
  impl->forest = std::move(*forest);
  return Reranker(std::move(impl));
}

Result<Reranker> Reranker::Load(const std::string& path, size_t features) {
  auto impl = std::make_unique<Impl>();
  impl->features = features;
  if (XGBoosterCreate(nullptr, 0, &impl->booster) != 0) return XgbError("booster");
  if (XGBoosterLoadModel(impl->booster, path.c_str()) != 0) return XgbError(path.c_str());
  bst_ulong trained = 0;
  if (XGBoosterGetNumFeature(impl->booster, &trained) != 0) return XgbError("features");
  if (trained != features) {
    return Status::Invalid("invalid_rerank",
                           path + ": trained on " + std::to_string(trained) +
                               " features, the blend gives " + std::to_string(features),
                           "members");
  }
  auto forest = ReadForest(impl->booster, features);
  if (!forest.ok()) return forest.status();
  impl->forest = std::move(*forest);
  return Reranker(std::move(impl));
}

common::Status Reranker::Save(const std::string& path) const {
  if (XGBoosterSaveModel(impl_->booster, path.c_str()) != 0) return XgbError(path.c_str());
  return Status::Ok();
}

std::vector<ScoredItem> Reranker::Rerank(RerankCandidates candidates, size_t n) const {
  auto& items = candidates.items;
  if (items.empty()) return {};
  if (candidates.features.size() != items.size() * impl_->features) {
    // Not RerankFeatures' rows for this model (a programming error): keep the blend's order.
    assert(false && "rerank features of another width");
    items.resize(std::min(n, items.size()));
    return std::move(items);
  }
  std::vector<float> scores(items.size());
  impl_->forest.Predict(candidates.features.data(), items.size(), impl_->features, scores.data());
  for (size_t i = 0; i < items.size(); ++i) items[i].score = scores[i];
  KeepBest(items, n);
  return std::move(items);
}

}  // namespace streamrec::models
