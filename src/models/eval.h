// Offline next-item evaluation of session recommenders (HR@K, MRR@K with one target per
// case, the SR-GNN/session-rec protocol), plus readers for the session dataset formats
// and a replay that trains an ItemModel on sessions. Used by tests and `streamrec evaluate`.
//
// Also: HR/MRR/NDCG at several K in one pass, the leave-one-out protocol per user (S3-Rec / ICLRec:
// full ranking, the user's history masked), and a common SessionRecommender interface with adapters
// for popularity, co-visitation (ItemModel), SKNN and V-SKNN.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/item_model.h"
#include "models/session_knn.h"

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

//! DCG gain of a single relevant item at 1-based `rank`: 1 / log2(rank + 1). With one target per
//! case the ideal DCG is 1, so this is the case's NDCG when rank <= K.
double NdcgAtRank(size_t rank);

//! HR@K, MRR@K and NDCG@K for several K in one pass, one target per case.
class MultiKEvaluator {
 public:
  explicit MultiKEvaluator(std::vector<size_t> ks = {10, 20});
  //! `ranked` best first; entries beyond the largest K are ignored.
  void Add(std::span<const ScoredItem> ranked, std::string_view target);
  //! Adds a case whose target ranked at `rank` (1-based; 0: not ranked).
  void AddRank(size_t rank);
  void Merge(const MultiKEvaluator& other);  // REQUIRES: same ks

  const std::vector<size_t>& ks() const { return ks_; }
  uint64_t cases() const { return cases_; }
  //! REQUIRES: k is one of ks().
  double HitRate(size_t k) const;
  double Mrr(size_t k) const;
  double Ndcg(size_t k) const;

 private:
  size_t Index(size_t k) const;
  std::vector<size_t> ks_;
  uint64_t cases_ = 0;
  std::vector<uint64_t> hits_;
  std::vector<double> reciprocal_rank_sum_, ndcg_sum_;
};

//! One user's items in chronological order.
struct UserSequence {
  std::string user;
  std::vector<std::string> items;
};
//! `user item item ...` per line (S3-Rec format; plain or gzip). max 0: all.
common::Result<std::vector<UserSequence>> ReadUserSequences(const std::string& path,
                                                            size_t max_users = 0);

//! A next-item model that can be trained on sessions and asked for a ranking, so that every model
//! runs through the same protocols.
class SessionRecommender {
 public:
  virtual ~SessionRecommender() = default;
  virtual std::string name() const = 0;
  //! Trains from scratch on sessions (clicks oldest first), in time order.
  virtual void Fit(std::span<const std::vector<std::string>> sessions) = 0;
  //! The k best next items after `prefix` (oldest first), best first, none of `exclude`.
  virtual std::vector<ScoredItem> Score(std::span<const std::string> prefix, size_t k,
                                        std::span<const std::string> exclude = {}) const = 0;
  //! The settings, for reports ("k=100 sample_size=500 ...").
  virtual std::string Describe() const = 0;
};

//! Most clicked items of the training sessions (POP).
std::unique_ptr<SessionRecommender> MakePopularityRecommender();
//! ItemModel co-visitation (ReplaySessions), queried with the prefix's last `window` items.
//! NOTE: ItemModel::Recommend never returns window items (repeat targets are misses).
std::unique_ptr<SessionRecommender> MakeCovisitationRecommender(ItemModelOptions options = {},
                                                                size_t window = 5);
std::unique_ptr<SessionRecommender> MakeSessionKnnRecommender(SessionKnnOptions options);
//! "pop", "covis", "sknn" or "vsknn" with default settings; nullptr when unknown.
std::unique_ptr<SessionRecommender> MakeRecommender(std::string_view name);

//! Called now and then with (cases done, cases in all).
using ProgressFn = std::function<void(size_t done, size_t total)>;

//! Session protocol: each case's prefix -> its target, full ranking, nothing masked.
MultiKEvaluator EvaluateSessions(const SessionRecommender& model,
                                 std::span<const NextItemCase> cases,
                                 std::vector<size_t> ks = {10, 20},
                                 const ProgressFn& progress = {});

//! A validation split of session data: the newest 10% of `sessions` (the file is in time
//! order) become prefix -> next-item cases and are removed; the oldest 90% stay to train on.
std::vector<NextItemCase> SplitNewestSessions(std::vector<std::vector<std::string>>& sessions);

//! The validation sessions of what trains once on session data (SASRec, SLi-Rec, a blend's
//! weights): every 20th, spread over the whole time range so the newest sessions still train.
inline constexpr size_t kSessionHoldoutEvery = 20;

//! Moves every n-th session (index % n == n - 1) out of `sessions` into prefix -> next-item
//! cases, as SasrecOptions::holdout_every holds them out. REQUIRES: n > 1.
std::vector<NextItemCase> SplitEveryNthSession(std::vector<std::vector<std::string>>& sessions,
                                               size_t n);

//! The grid SelectVsknnOptions searches: IDF weighting off or 1 (a mild boost of rare items);
//! position decay off or 1, 2, 4, 8 places (from sharp to mild).
inline constexpr double kSelectIdfWeightings[] = {0.0, 1.0};
inline constexpr double kSelectPositionDecays[] = {0.0, 1.0, 2.0, 4.0, 8.0};

//! V-SKNN's idf_weighting and position_decay chosen from the grid above on a validation split
//! of the training data only, never the test cases: sessions fit the oldest 90% and predict the
//! next clicks of the newest 10% (criterion HR@20); leave-one-out (`users` not empty) predicts
//! each user's second-to-last item (criterion NDCG@10). `options` gives the other settings;
//! `log` (may be empty) hears one line per candidate. Returns `options` with the chosen pair.
SessionKnnOptions SelectVsknnOptions(const SessionKnnOptions& options,
                                     const std::vector<std::vector<std::string>>& train,
                                     std::span<const UserSequence> users,
                                     const std::function<void(const std::string&)>& log = {});

//! Leave-one-out training data: every user's items but the last two (users with >= 3 items).
std::vector<std::vector<std::string>> LeaveOneOutTraining(std::span<const UserSequence> users);
//! Leave-one-out protocol (S3-Rec): the last item is the test target predicted from all the earlier
//! ones (`validation`: the second-to-last from the items before it); full ranking with the input
//! history masked. Users with < 3 items are skipped.
MultiKEvaluator EvaluateLeaveOneOut(const SessionRecommender& model,
                                    std::span<const UserSequence> users, bool validation = false,
                                    std::vector<size_t> ks = {5, 10, 20},
                                    const ProgressFn& progress = {});

}  // namespace streamrec::models
