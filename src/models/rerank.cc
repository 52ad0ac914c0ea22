#include "models/rerank.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>
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
  BoosterHandle booster = nullptr;
  size_t features = 0;
  size_t groups = 0;
  // A precaution: XGBoost's C API does not promise that concurrent predictions on one booster
  // are safe in every version; a blend's members cost far more than waiting here.
  mutable std::mutex predict_mu;
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
  auto invalid = [](const std::string& why) {
    return Status::Invalid("no_data", "--rerank: " + why, "select");
  };
  if (groups.size() != targets.size()) return invalid("one target per group");
  auto impl = std::make_unique<Impl>();
  std::vector<float> rows, labels;
  std::vector<unsigned> sizes;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& group = groups[g];
    if (group.items.empty()) continue;
    const size_t width = group.features.size() / group.items.size();
    if (impl->features == 0) impl->features = width;
    if (width != impl->features || width * group.items.size() != group.features.size()) {
      return invalid("feature rows of different widths");
    }
    const auto hit = std::find_if(group.items.begin(), group.items.end(),
                                  [&](const ScoredItem& s) { return s.item_id == targets[g]; });
    if (hit == group.items.end()) continue;
    rows.insert(rows.end(), group.features.begin(), group.features.end());
    for (const auto& item : group.items) labels.push_back(&item == &*hit ? 1.0f : 0.0f);
    sizes.push_back(unsigned(group.items.size()));
  }
  if (sizes.empty()) return invalid("no validation case has its next item among the candidates");
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
  // Served one request at a time per worker: no thread pool per prediction.
  if (XGBoosterSetParam(impl->booster, "nthread", "1") != 0) return XgbError("nthread");
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
  if (XGBoosterSetParam(impl->booster, "nthread", "1") != 0) return XgbError("nthread");
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
  char array[160];
  std::snprintf(
      array, sizeof(array),
      "{\"data\": [%llu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
      "\"version\": 3}",
      static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(candidates.features.data())),
      items.size(), impl_->features);
  static constexpr char kConfig[] =
      "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
      "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}";
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* scores = nullptr;
  {
    std::lock_guard lock(impl_->predict_mu);
    if (XGBoosterPredictFromDense(impl_->booster, array, kConfig, nullptr, &shape, &dims,
                                  &scores) != 0) {
      // Cannot happen with a loaded model and rows of its width; keep the blend's order.
      items.resize(std::min(n, items.size()));
      return std::move(items);
    }
    for (size_t i = 0; i < items.size(); ++i) items[i].score = scores[i];
  }
  auto better = [](const ScoredItem& a, const ScoredItem& b) {
    return a.score != b.score ? a.score > b.score : a.item_id < b.item_id;
  };
  const size_t keep = std::min(n, items.size());
  std::partial_sort(items.begin(), items.begin() + ptrdiff_t(keep), items.end(), better);
  items.resize(keep);
  return std::move(items);
}

}  // namespace streamrec::models
