// The interface the streaming pipeline uses for a user's stored list when a learned model is
// hosted (registry::ModelHost). Header only, so that the pipeline depends on no registry code.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/item_model.h"

namespace streamrec::models {

struct RecommenderOutput {
  //! Best first, none of the input items (served lists; registry::LoadRecommender's
  //! keep_window_items, for offline evaluation only, keeps them).
  std::vector<ScoredItem> items;
  std::string model;  //!< what answered, e.g. "vsknn-diginetica@v3/A"
};

//! One user's question in a batch.
struct RecommendRequest {
  std::string_view tenant;
  std::string_view user;
  std::span<const std::string> items;  //!< the user's window, oldest first
  size_t n = 0;
  std::span<const int64_t> times;  //!< the items' event times (ms), or empty when unknown
};

class Recommender {
 public:
  virtual ~Recommender() = default;
  //! The n best items for a user whose window is `items` (oldest first). May return fewer than
  //! n, or none for unknown items and cold users: the caller then fills up from its own
  //! co-visitation list. Thread-safe; called from pipeline workers and HTTP handlers.
  virtual RecommenderOutput Recommend(std::string_view tenant, std::string_view user,
                                      std::span<const std::string> items, size_t n) const = 0;
  //! Several users at once, one output per request in order; the same answers as Recommend.
  //! The pipeline asks this for all users of a step, so a model can score them in one pass.
  virtual std::vector<RecommenderOutput> RecommendBatch(
      std::span<const RecommendRequest> requests) const {
    std::vector<RecommenderOutput> out;
    out.reserve(requests.size());
    for (const auto& r : requests) out.push_back(Recommend(r.tenant, r.user, r.items, r.n));
    return out;
  }
};

}  // namespace streamrec::models
