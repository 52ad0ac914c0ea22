#include "store/store.h"

#include <boost/json.hpp>
#include <filesystem>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include "common/clock.h"

namespace streamrec::store {

namespace {

//! Drops dedup entries older than the TTL: bounded memory of event ids.
class DedupTtlFilter : public rocksdb::CompactionFilter {
 public:
  explicit DedupTtlFilter(int64_t ttl_ms) : ttl_ms_(ttl_ms) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    if (value.size() < 8) return true;
    auto ms = static_cast<int64_t>(ReadU64(std::string_view(value.data(), 8)));
    return ms < common::NowMs() - ttl_ms_;
  }
  const char* Name() const override { return "streamrec.DedupTtlFilter"; }

 private:
  int64_t ttl_ms_;
};

}  // namespace

common::Status FromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) return common::Status::Ok();
  return common::Status::Internal(std::string(what) + ": " + s.ToString());
}

//! Which database holds a family: 0 log (fsynced appends), 1 state (user state, catalog),
//! 2 items (item model checkpoints: large batches that must not stall state writes).
static int DbIndex(Cf cf) {
  switch (cf) {
    case Cf::kLog:
    case Cf::kDedup:
    case Cf::kBadRows:
    case Cf::kMeta:
    case Cf::kAuth:
      return 0;
    case Cf::kItems:
      return 2;
    default:
      return 1;
  }
}
constexpr const char* kDbNames[] = {"log", "state", "items"};

common::Result<std::unique_ptr<Store>> Store::Open(const std::string& dir,
                                                   const StoreOptions& options) {
  auto store = std::unique_ptr<Store>(new Store());
  store->dir_ = dir;
  store->dedup_filter_ = std::make_unique<DedupTtlFilter>(options.dedup_ttl_ms);

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  // One memtable budget for both databases, so memory stays bounded however many
  // users and items there are (their state lives in SST files and the block cache).
  auto write_buffers = std::make_shared<rocksdb::WriteBufferManager>(options.memtable_budget_bytes);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
  table.cache_index_and_filter_blocks = true;

  rocksdb::ColumnFamilyOptions base;
  base.write_buffer_size = options.write_buffer_bytes;
  base.max_write_buffer_number = 3;
  base.compression = rocksdb::kLZ4Compression;
  base.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // Two databases with separate write-ahead logs: the event log fsyncs every group
  // commit, while pipeline state is written without sync (it is rebuilt from the log).
  // Sharing one WAL would make every state write queue behind the log's fsync.
  for (int db_index = 0; db_index < 3; ++db_index) {
    std::string path = dir + "/" + kDbNames[db_index];
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return common::Status::Internal("cannot create " + path + ": " + ec.message());

    std::vector<Cf> members;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, base);
    for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
      auto cf = static_cast<Cf>(i);
      if (DbIndex(cf) != db_index) continue;
      rocksdb::ColumnFamilyOptions o = base;
      if (cf == Cf::kDedup) o.compaction_filter = store->dedup_filter_.get();
      if (cf == Cf::kDedup || cf == Cf::kState) {
        // Most lookups are for an absent key (a new event id; a user new to the pipeline,
        // whose state is looked up on their first event): a memtable bloom filter answers
        // those without walking the skip list, one cache miss per level.
        o.memtable_prefix_bloom_size_ratio = 0.1;
        o.memtable_whole_key_filtering = true;
      }
      if (cf == Cf::kLog) {
        o.write_buffer_size = options.write_buffer_bytes * 2;
      }
      members.push_back(cf);
      cfs.emplace_back(CfName(cf), o);
    }

    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.max_background_jobs = 2;
    db_options.keep_log_file_num = 3;
    db_options.max_total_wal_size = 256ull << 20;
    db_options.write_buffer_manager = write_buffers;

    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(db_options, path, cfs, &handles, &raw);
    if (!s.ok()) return FromRocks(s, ("open " + path).c_str());
    auto& db = store->dbs_[db_index];
    db.db.reset(raw);
    db.default_handle = handles[0];
    for (size_t i = 0; i < members.size(); ++i) {
      store->handles_[static_cast<int>(members[i])] = handles[i + 1];
      store->owners_[static_cast<int>(members[i])] = raw;
    }
  }

  // Continue bad-row sequence numbers after the newest stored one.
  std::unique_ptr<rocksdb::Iterator> it(
      store->db(Cf::kBadRows)->NewIterator({}, store->cf(Cf::kBadRows)));
  it->SeekToLast();
  if (it->Valid() && it->key().size() == 16) {
    store->bad_row_seq_ = ReadU64(std::string_view(it->key().data() + 8, 8)) + 1;
  }
  return store;
}

Store::~Store() {
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    if (owners_[i]) owners_[i]->DestroyColumnFamilyHandle(handles_[i]);
  }
  for (auto& db : dbs_) {
    if (!db.db) continue;
    db.db->DestroyColumnFamilyHandle(db.default_handle);
    db.db->Close();
    db.db.reset();
  }
}

uint64_t Store::ApproximateBytes() const {
  uint64_t total = 0;
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    uint64_t v = 0;
    if (owners_[i]->GetIntProperty(handles_[i], "rocksdb.total-sst-files-size", &v)) total += v;
    if (owners_[i]->GetIntProperty(handles_[i], "rocksdb.cur-size-all-mem-tables", &v)) total += v;
  }
  return total;
}

uint64_t Store::EstimateKeys(Cf family) const {
  uint64_t v = 0;
  db(family)->GetIntProperty(cf(family), "rocksdb.estimate-num-keys", &v);
  return v;
}

common::Status Store::PutBadRows(const std::vector<events::BadRow>& rows, int64_t now_ms) {
  if (rows.empty()) return common::Status::Ok();
  rocksdb::WriteBatch batch;
  for (const auto& row : rows) {
    boost::json::object o;
    o["received_ms"] = now_ms;
    o["reason"] = row.reason;
    o["field"] = row.field;
    o["message"] = row.message;
    o["tenant"] = row.tenant;
    o["payload"] = row.payload.size() > 4096 ? row.payload.substr(0, 4096) : row.payload;
    batch.Put(cf(Cf::kBadRows), BadRowKey(static_cast<uint64_t>(now_ms), bad_row_seq_++),
              boost::json::serialize(o));
  }
  return FromRocks(db(Cf::kBadRows)->Write({}, &batch), "write bad rows");
}

std::vector<std::string> Store::RecentBadRows(size_t limit) const {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db(Cf::kBadRows)->NewIterator({}, cf(Cf::kBadRows)));
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    out.push_back(it->value().ToString());
  }
  return out;
}

namespace {
//! Whether a raw input mentions `user` as a whole JSON string or query-string value.
bool Mentions(std::string_view payload, std::string_view user) {
  if (user.empty()) return false;
  for (size_t at = payload.find(user); at != std::string_view::npos;
       at = payload.find(user, at + 1)) {
    char before = at == 0 ? '\0' : payload[at - 1];
    size_t end = at + user.size();
    char after = end < payload.size() ? payload[end] : '\0';
    if ((before == '"' && after == '"') || (before == '=' && (after == '&' || after == '\0'))) {
      return true;
    }
  }
  return false;
}
}  // namespace

void Store::ForEachBadRowMentioning(
    std::string_view user,
    const std::function<void(std::string_view key, std::string_view row)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db(Cf::kBadRows)->NewIterator({}, cf(Cf::kBadRows)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    boost::system::error_code ec;
    auto row = boost::json::parse(it->value().ToStringView(), ec);
    if (ec || !row.is_object() || !row.as_object().contains("payload")) continue;
    const auto& payload = row.at("payload").as_string();
    if (Mentions(std::string_view(payload.data(), payload.size()), user)) {
      fn(it->key().ToStringView(), it->value().ToStringView());
    }
  }
}

std::vector<std::string> Store::BadRowsMentioning(std::string_view user) const {
  std::vector<std::string> out;
  ForEachBadRowMentioning(user, [&](std::string_view, std::string_view row) {
    out.emplace_back(row);
  });
  return out;
}

common::Result<size_t> Store::EraseBadRowsMentioning(std::string_view user) {
  rocksdb::WriteBatch batch;
  ForEachBadRowMentioning(user, [&](std::string_view key, std::string_view) {
    batch.Delete(cf(Cf::kBadRows), key);
  });
  if (batch.Count() == 0) return size_t{0};
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto s = db(Cf::kBadRows)->Write(wo, &batch); !s.ok()) return FromRocks(s, "erase bad rows");
  return static_cast<size_t>(batch.Count());
}

common::Status Store::TrimBadRows(int64_t cutoff_ms) {
  std::string begin = BadRowKey(0, 0);
  std::string end = BadRowKey(static_cast<uint64_t>(std::max<int64_t>(cutoff_ms, 0)), 0);
  return FromRocks(db(Cf::kBadRows)->DeleteRange({}, cf(Cf::kBadRows), begin, end),
                   "trim bad rows");
}

}  // namespace streamrec::store
