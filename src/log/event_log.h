// The durable event log: partitioned by user, group-committed, de-duplicated by event id.
//
// One writer thread owns every append: requests queue their events, the writer takes all
// that are waiting, drops duplicates (tenant + event_id, checked against the dedup column
// family and the current group), writes one RocksDB WriteBatch with sync=true, and only
// then runs the requests' callbacks. So an acknowledged event is on disk, exactly once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/event.h"
#include "store/store.h"

namespace streamrec::log {

struct LogOptions {
  uint32_t partitions = 8;  //!< fixed when the data dir is created
  int64_t retention_ms = 7ll * 24 * 3600 * 1000;     //!< events older are dropped
  uint64_t retention_max_events_per_partition = 20'000'000;  //!< and beyond this count
  size_t max_group_events = 20'000;  //!< most events one commit takes
  //! Back-pressure: AppendAsync answers kUnavailable while this many events wait (a lone
  //! request is always taken, whatever its size).
  size_t max_queued_events = 200'000;
  bool sync = true;  //!< fsync each group commit (turn off only for throwaway benches)
};

struct LoggedEvent {
  uint32_t partition = 0;
  uint64_t seq = 0;  //!< per partition, dense, starting at 0
  events::Event event;
};

struct AppendResult {
  size_t appended = 0;    //!< new events written
  size_t duplicates = 0;  //!< events whose (tenant, event_id) was already in the log
};

class EventLog {
 public:
  using AppendCallback = std::function<void(common::Result<AppendResult>)>;
  using CommitListener = std::function<void(std::span<const LoggedEvent>)>;

  //! Opens the log in `store`; checks/records the partition count in the meta family.
  static common::Result<std::unique_ptr<EventLog>> Open(store::Store& store,
                                                        const LogOptions& options,
                                                        common::Registry& metrics);
  virtual ~EventLog() = default;

  //! Queues events for the next group commit. `done` runs on the writer thread once the
  //! events are durable (or failed); it must be quick (post the response elsewhere).
  //! After Stop(), or while max_queued_events wait, `done` runs at once (on the caller's
  //! thread) with kUnavailable. Events with an empty event_id are never de-duplicated.
  virtual void AppendAsync(std::vector<events::Event> events, AppendCallback done) = 0;

  //! Blocking convenience over AppendAsync. NOTE: never call it from a callback or the
  //! commit listener (they run on the writer thread, which it would wait for).
  common::Result<AppendResult> Append(std::vector<events::Event> events);

  //! Called on the writer thread after each durable commit with the new events, in
  //! commit order (seq increasing per partition). Set before the first append, or later:
  //! a commit either reaches a listener set concurrently or is already counted in the
  //! NextSeq that its caller reads after SetCommitListener returns.
  virtual void SetCommitListener(CommitListener listener) = 0;

  //! Events of `partition` with seq >= from_seq, at most `max`.
  virtual common::Result<std::vector<LoggedEvent>> Read(uint32_t partition, uint64_t from_seq,
                                                        size_t max) const = 0;
  //! The seq the next appended event of `partition` will get.
  virtual uint64_t NextSeq(uint32_t partition) const = 0;
  //! The oldest seq still stored in `partition` (== NextSeq when empty).
  virtual uint64_t FirstSeq(uint32_t partition) const = 0;
  virtual uint32_t partitions() const = 0;
  //! Stable hash of (tenant, user) onto [0, partitions).
  virtual uint32_t PartitionOf(std::string_view tenant, std::string_view user) const = 0;

  //! Drops events older than retention or beyond the per-partition cap, but never an
  //! event at or after `keep_from[p]` (the slowest consumer's next seq per partition).
  virtual common::Status EnforceRetention(int64_t now_ms, std::span<const uint64_t> keep_from) = 0;

  //! GDPR erasure: overwrites every stored event of (tenant, user) with a redacted
  //! record (same seq and times, type other, no user, item, ids or properties), so seqs
  //! stay dense for consumers and no personal data remains. Returns how many were redacted.
  virtual common::Result<size_t> Redact(std::string_view tenant, std::string_view user) = 0;
  //! The stored events of (tenant, user), oldest first (GDPR export).
  virtual common::Result<std::vector<LoggedEvent>> EventsOf(std::string_view tenant,
                                                            std::string_view user) const = 0;

  //! Drains the queue (committing what is queued), then stops the writer thread.
  virtual void Stop() = 0;
};

}  // namespace streamrec::log
