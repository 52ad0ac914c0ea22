// Session-based k-nearest-neighbour recommenders (SKNN and V-SKNN, Ludewig & Jannach 2018,
// "Evaluation of session-based recommendation algorithms"; the session-rec framework).
//
// Past sessions are indexed per item (the most recent `sample_size` sessions of each item). For a
// query session the candidate neighbours are the `sample_size` most recent indexed sessions sharing
// an item with it; the `k` most similar of them vote for their items with their similarity. SKNN
// uses cosine similarity of binary item sets; V-SKNN weighs the query's items linearly by position
// (p/L: the newest weighs 1) and each neighbour's vote by 1/d, d the distance from the end of the
// query to the newest item it shares with it; optionally (position_decay) each vote also decays
// with the item's distance, in the neighbour session, from that shared item.
//
// Incremental and bounded: sessions are added whole (AddSession) or click by click (Observe; an
// open session joins the index when closed or when it is the least recently updated of more than
// `max_open_sessions`); beyond `max_sessions` the oldest session is evicted. Thread-safe: updates
// take an exclusive lock, queries a shared one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/item_model.h"

namespace streamrec::models {

struct SessionKnnOptions {
  enum class Kind { kSknn, kVsknn };
  Kind kind = Kind::kVsknn;
  size_t k = 100;            //!< neighbours that vote (session-rec / L&J 2018 default)
  size_t sample_size = 500;  //!< most recent sessions considered as neighbours
  //! V-SKNN only: votes are multiplied by (1 + idf_weighting * log(N / df(item))); 0 = off.
  double idf_weighting = 0;
  //! V-SKNN only: a neighbour's vote for its item d places away from the neighbour's item that
  //! the query clicked most recently is multiplied by exp(-d / position_decay); 0 = off. Items
  //! seen next to what the shopper just viewed count more (STAN's lambda_3, Garg et al. 2019).
  double position_decay = 0;
  size_t max_sessions = 2'000'000;     //!< indexed sessions; the oldest is evicted
  size_t max_session_length = 200;     //!< distinct items kept per indexed session
  size_t max_open_sessions = 100'000;  //!< sessions being built by Observe
};

class SessionKnn {
 public:
  explicit SessionKnn(SessionKnnOptions options = {});
  ~SessionKnn();
  SessionKnn(const SessionKnn&) = delete;
  SessionKnn& operator=(const SessionKnn&) = delete;

  const SessionKnnOptions& options() const;

  //! Indexes a finished session (clicks oldest first; repeats are allowed) as the newest.
  void AddSession(std::span<const std::string> items);
  //! Appends a click to an open session; it is indexed when closed or evicted as the least recently
  //! updated open session.
  void Observe(std::string_view session_id, std::string_view item);
  //! Indexes the open session now (no-op when unknown).
  void CloseSession(std::string_view session_id);

  //! The n best items for a session given its clicks (oldest first), best first, without `exclude`.
  //! Items of the query itself may be recommended (repeat views are common).
  std::vector<ScoredItem> Recommend(std::span<const std::string> session, size_t n,
                                    std::span<const std::string> exclude = {}) const;
  //! Recommend for an open session's clicks so far (empty when unknown).
  std::vector<ScoredItem> RecommendForSession(std::string_view session_id, size_t n) const;

  size_t session_count() const;  //!< indexed sessions
  size_t item_count() const;     //!< distinct items in indexed sessions
  uint64_t ApproximateBytes() const;

  //! Binary snapshot of the indexed sessions (oldest first) and the open sessions.
  std::string Serialize() const;
  //! Replaces the state with a snapshot from Serialize; the options stay this object's.
  common::Status Deserialize(std::string_view bytes);
  common::Status Save(const std::string& path) const;
  common::Status Load(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrec::models
