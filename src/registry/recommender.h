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
  std::vector<ScoredItem> items;  //!< best first, none of the input items
  std::string model;              //!< what answered, e.g. "vsknn-diginetica@v3/A"
};

class Recommender {
 public:
  virtual ~Recommender() = default;
  //! The n best items for a user whose window is `items` (oldest first). May return fewer than
  //! n, or none for unknown items and cold users: the caller then fills up from its own
  //! co-visitation list. Thread-safe; called from pipeline workers and HTTP handlers.
  virtual RecommenderOutput Recommend(std::string_view tenant, std::string_view user,
                                      std::span<const std::string> items, size_t n) const = 0;
};

}  // namespace streamrec::models
