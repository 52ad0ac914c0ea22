// A hybrid of recommenders: each member's ranked list becomes a probability distribution over
// its items and the members' distributions are mixed: with equal weights by default, or with
// weights chosen on a validation split (streamrec train --model blend --select), never by hand.
// Used offline (streamrec train --model blend) and online (registry::ModelHost) alike.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "models/item_model.h"

namespace streamrec::models {

//! How a member's scores become probabilities over its list.
enum class ScoreScale {
  kLogit,       //!< softmax over the list (SASRec, SLi-Rec, TorchScript modules)
  kSimilarity,  //!< score / sum of the list's scores, non-negative (session-kNN votes)
};

//! Members' lists to look at: deep enough that an item ranked well by one member but missing
//! from another's short list still gets the first member's share.
inline constexpr size_t kBlendDepth = 100;

//! A member's list as probabilities (summing to 1), in list order; uniform when nothing weighs.
std::vector<double> ListProbabilities(const std::vector<ScoredItem>& list, ScoreScale scale);

//! The n best items of the mixture of `lists` (one per member, best first, each read as
//! `scales` says) with `weights` (relative, > 0; empty: equal), best first; ties by item id. A
//! member with an empty list (a cold user, unknown items) counts as absent: the others share its
//! weight in proportion to theirs.
//! REQUIRES: lists.size() == scales.size(); weights empty or of the same size.
std::vector<ScoredItem> BlendLists(std::span<const std::vector<ScoredItem>> lists,
                                   std::span<const ScoreScale> scales,
                                   std::span<const double> weights, size_t n);

}  // namespace streamrec::models
