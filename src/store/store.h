// The embedded RocksDB storage under <data_dir>/db: three databases with their own
// write-ahead logs: `log` (event log, dedup ids, bad rows, meta, API key hashes; fsynced
// group commits), `state` (user state, lists, offsets, catalog, rules, KPIs; not synced, the
// pipeline's part is rebuilt from the log) and `items` (item model checkpoints, whose large
// batches must not stall state writes), and their column families.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "events/event.h"
#include "store/key_schema.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Status;
class CompactionFilter;
}  // namespace rocksdb

namespace streamrec::store {

struct StoreOptions {
  //! Shared LRU block cache. It charges each block at its allocation's usable size, which under
  //! jemalloc's size classes is up to ~20% above the block's length: 160 MiB holds what 128 MiB
  //! held under glibc's malloc (measured: same ingest rate, 100 MiB less RSS at 1.1M users).
  size_t block_cache_bytes = 160ull << 20;
  size_t write_buffer_bytes = 32ull << 20;   //!< per column family memtable
  size_t memtable_budget_bytes = 128ull << 20;  //!< all memtables together
  int64_t dedup_ttl_ms = 24ll * 3600 * 1000;  //!< event ids remembered this long
};

class Store {
 public:
  //! Opens or creates both databases under `dir` (created if missing).
  static common::Result<std::unique_ptr<Store>> Open(const std::string& dir,
                                                     const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  //! The database holding `cf`. NOTE: one WriteBatch may only span families of one db.
  rocksdb::DB* db(Cf cf) const { return owners_[static_cast<int>(cf)]; }
  rocksdb::ColumnFamilyHandle* cf(Cf cf) const { return handles_[static_cast<int>(cf)]; }
  const std::string& dir() const { return dir_; }

  //! Approximate live bytes on disk (SST + memtables), for metrics.
  uint64_t ApproximateBytes() const;
  //! RocksDB's estimate of the keys in a column family, for metrics.
  uint64_t EstimateKeys(Cf cf) const;

  //! Stores rejected inputs (not synced: a lost bad row loses no acknowledged event).
  common::Status PutBadRows(const std::vector<events::BadRow>& rows, int64_t now_ms);
  //! Most recent bad rows, newest first, as JSON objects.
  std::vector<std::string> RecentBadRows(size_t limit) const;
  //! Bad rows whose payload names `user` (as a JSON string or a query value), as JSON.
  std::vector<std::string> BadRowsMentioning(std::string_view user) const;
  //! GDPR erasure of those bad rows; returns how many were removed.
  common::Result<size_t> EraseBadRowsMentioning(std::string_view user);
  //! Removes bad rows older than `cutoff_ms`.
  common::Status TrimBadRows(int64_t cutoff_ms);

 private:
  Store() = default;
  void ForEachBadRowMentioning(
      std::string_view user,
      const std::function<void(std::string_view key, std::string_view row)>& fn) const;
  std::string dir_;
  struct Db {
    std::unique_ptr<rocksdb::DB> db;
    rocksdb::ColumnFamilyHandle* default_handle = nullptr;
  };
  std::unique_ptr<rocksdb::CompactionFilter> dedup_filter_;  // outlives the databases
  std::array<Db, 3> dbs_;  // log, state, items
  std::array<rocksdb::ColumnFamilyHandle*, static_cast<int>(Cf::kCount)> handles_{};
  std::array<rocksdb::DB*, static_cast<int>(Cf::kCount)> owners_{};
  std::atomic<uint64_t> bad_row_seq_{0};
};

//! Converts a RocksDB status into ours (kInternal with the message), ok stays ok.
common::Status FromRocks(const rocksdb::Status& s, const char* what);

}  // namespace streamrec::store
