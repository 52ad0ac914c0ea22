// A learned re-ranker over a blend's head (stacking, as in learning-to-rank ensembles): for the
// blend's best kRerankCandidates items it reads each member's probability and rank, the blend's
// own score and where the item sits in the shopper's session, and a gradient-boosted ranker
// (XGBoost, pairwise objective) trained on validation sessions the members never saw orders them.
// The linear mix cannot say "a repeat view is likely when V-SKNN ranks it first, a new item when
// SASRec does"; the trees can. Trained by `streamrec train --model blend --rerank`, served by
// registry::ModelHost with the blend. Served lists leave the window's own items out (as for
// every served model), so online the ranker orders new items only; the offline session
// protocol, which keeps them, is where it was checked.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/blend.h"
#include "models/item_model.h"

namespace streamrec::models {

//! Items of the blend re-ranked per request (at least; more when more are asked for).
inline constexpr size_t kRerankCandidates = 30;

//! The blend's head for one request with a row of features per item.
struct RerankCandidates {
  std::vector<ScoredItem> items;  //!< the blend's best, best first
  std::vector<float> features;    //!< row-major, RerankFeatureCount(members) per item
};

//! Per member: probability and rank; then the blend's score, whether the item is in the
//! session, its distance from the session's end and the session's length.
size_t RerankFeatureCount(size_t members);

//! The blend of `lists` (as BlendLists reads them) for a session `prefix` (oldest first), its
//! best max(n, kRerankCandidates) items with their features.
RerankCandidates RerankFeatures(std::span<const std::vector<ScoredItem>> lists,
                                std::span<const ScoreScale> scales, std::span<const double> weights,
                                std::span<const std::string> prefix, size_t n);

//! Training settings: common gradient-boosting defaults, fixed (not tuned per dataset).
struct RerankerOptions {
  int rounds = 150;
  double eta = 0.1;
  int max_depth = 6;
  double subsample = 0.8;
  int threads = 2;
  uint64_t seed = 1;
};

class Reranker {
 public:
  ~Reranker();
  Reranker(Reranker&&) noexcept;
  Reranker& operator=(Reranker&&) noexcept;

  //! Learns to put `targets[i]` first among `groups[i]`'s items; groups without their target
  //! teach nothing and are skipped. kInvalidArgument (field "select") when no group has its
  //! target or the feature widths differ.
  static common::Result<Reranker> Train(std::span<const RerankCandidates> groups,
                                        std::span<const std::string> targets,
                                        const RerankerOptions& options = {});
  //! A model saved by Save; `features` must be the width it was trained with.
  static common::Result<Reranker> Load(const std::string& path, size_t features);
  common::Status Save(const std::string& path) const;

  size_t features() const;
  size_t groups_trained() const;  //!< groups Train learned from (0 after Load)

  //! The candidates ordered by the model, the best n, scored by it (the booster's margin, as
  //! XGBoost predicts it). Thread-safe.
  std::vector<ScoredItem> Rerank(RerankCandidates candidates, size_t n) const;

 private:
  struct Impl;
  explicit Reranker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrec::models
