// Offline next-item evaluation of session recommenders (HR@K, MRR@K with one target per
// case, the SR-GNN/session-rec protocol), plus readers for the session dataset formats
// and a replay that trains an ItemModel on sessions. Used by tests and `streamrec evaluate`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/item_model.h"

namespace streamrec::models {

//! One next-item case: the session prefix (oldest first) and the item that followed.
struct NextItemCase {
  std::vector<std::string> prefix;
  std::string target;
};

struct RankingMetrics {
  size_t k = 20;
  uint64_t cases = 0;
  uint64_t hits = 0;               //!< target within the first k
  double reciprocal_rank_sum = 0;  //!< 1/rank for hits, 0 otherwise
  double HitRate() const { return cases ? static_cast<double>(hits) / cases : 0; }
  double Mrr() const { return cases ? reciprocal_rank_sum / cases : 0; }
};

//! Accumulates HR@K and MRR@K over ranked lists.
class NextItemEvaluator {
 public:
  explicit NextItemEvaluator(size_t k) { metrics_.k = k; }
  //! `ranked` best first; only its first k entries count.
  void Add(std::span<const ScoredItem> ranked, std::string_view target);
  const RankingMetrics& metrics() const { return metrics_; }

 private:
  RankingMetrics metrics_;
};

//! One session per line, item ids separated by spaces (plain or gzip). max 0: all.
common::Result<std::vector<std::vector<std::string>>> ReadSessions(const std::string& path,
                                                                   size_t max_sessions = 0);
//! `prefix ids (space separated)<TAB>target` per line (plain or gzip). max 0: all.
common::Result<std::vector<NextItemCase>> ReadNextItemCases(const std::string& path,
                                                            size_t max_cases = 0);

struct ReplayOptions {
  std::string tenant = "eval";
  int64_t start_ms = 1'600'000'000'000;
  int64_t step_ms = 10'000;           //!< synthetic time between consecutive views
  int64_t window_ms = 5 * 60 * 1000;  //!< the pipeline's default window
  size_t window_max_items = 20;
};

//! Feeds each session to `model` as one user's views, `step_ms` apart (time keeps
//! increasing across sessions), each with the session's earlier views within the window.
void ReplaySessions(ItemModel& model, std::span<const std::vector<std::string>> sessions,
                    const ReplayOptions& options = {});

struct NextItemReport {
  RankingMetrics recommend;  //!< ItemModel::Recommend on the last `window` prefix items
  RankingMetrics popular;    //!< ItemModel::Popular of the tenant, the baseline
};

//! Scores every case with the prefix's last `window` items as the user's window.
//! NOTE: Recommend never returns window items, so repeat-click targets count as misses.
NextItemReport EvaluateNextItem(const ItemModel& model, std::string_view tenant,
                                std::span<const NextItemCase> cases, size_t k = 20,
                                size_t window = 5);

}  // namespace streamrec::models
