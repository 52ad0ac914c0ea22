// Per-user coalescing for push sinks: a user's list is sent only when it differs from the
// last one pushed successfully, at most once per interval, latest wins. Bounded: at most
// `max_pending_users` waiting (oldest pending evicted) and `max_tracked_users` remembered
// (least recently touched idle user forgotten; at worst that user's next list is re-sent).
// NOT thread-safe: the owning sink holds its lock around every call.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "sinks/sink.h"

namespace streamrec::sinks {

struct CoalescerOptions {
  int64_t interval_ns = 0;  //!< min time between two pushes for one user
  size_t max_pending_users = 100'000;
  size_t max_tracked_users = 1'000'000;
};

//! One update on its way, with the attempts spent on it.
struct PendingPush {
  std::string key;
  Update update;
  uint64_t hash = 0;
  int attempt = 0;  //!< attempts already made
};

class Coalescer {
 public:
  explicit Coalescer(CoalescerOptions options) : options_(options) {}

  enum class Offered { kQueued, kReplaced, kUnchanged };
  //! `*evicted` is set when the oldest pending user had to make room.
  Offered Offer(Update update, int64_t now_ns, bool* evicted);
  //! The pending user due first (now, or regardless of the interval when `flush`) that is
  //! not in flight; marks it in flight. Otherwise nullopt and `*next_due_ns` (or INT64_MAX).
  std::optional<PendingPush> TakeDue(int64_t now_ns, bool flush, int64_t* next_due_ns);
  //! Delivered (success) or given up (dead-lettered): the user is no longer in flight.
  void Done(const std::string& key, bool success);
  //! Puts a failed push back, due at `due_ns`. False when a newer update for the user
  //! arrived meanwhile (it replaces the failed one: latest wins).
  bool Retry(PendingPush push, int64_t due_ns);
  //! Removes and returns everything pending (shutdown).
  std::vector<PendingPush> DrainAll();

  size_t pending() const { return due_.size(); }
  size_t tracked() const { return entries_.size(); }
  size_t in_flight() const { return in_flight_; }

  static uint64_t HashItems(const Update& update);

 private:
  struct Entry {
    bool has_sent = false;
    uint64_t sent_hash = 0;
    bool in_flight = false;
    uint64_t in_flight_hash = 0;
    int64_t last_push_ns = INT64_MIN / 2;
    std::optional<PendingPush> pending;
    int64_t due_ns = 0;
    uint64_t seq = 0;
    std::list<std::string>::iterator fifo_it;  // valid while pending
    std::list<std::string>::iterator lru_it;
  };
  void Unqueue(Entry& e);
  void Enqueue(const std::string& key, Entry& e, int64_t due_ns);
  void ForgetIdle();

  CoalescerOptions options_;
  std::unordered_map<std::string, Entry> entries_;
  std::set<std::tuple<int64_t, uint64_t, std::string>> due_;  // pending users by due time
  std::list<std::string> fifo_;                               // pending users, oldest first
  std::list<std::string> lru_;                                // all users, least recent first
  uint64_t seq_ = 0;
  size_t in_flight_ = 0;
};

}  // namespace streamrec::sinks
