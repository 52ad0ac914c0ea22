#include "store/store.h"

#include <boost/json.hpp>
#include <filesystem>
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

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

common::Result<std::unique_ptr<Store>> Store::Open(const std::string& dir,
                                                   const StoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return common::Status::Internal("cannot create " + dir + ": " + ec.message());

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
  table.cache_index_and_filter_blocks = true;

  rocksdb::ColumnFamilyOptions base;
  base.write_buffer_size = options.write_buffer_bytes;
  base.max_write_buffer_number = 3;
  base.compression = rocksdb::kLZ4Compression;
  base.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  auto* dedup_filter = new DedupTtlFilter(options.dedup_ttl_ms);  // owned below

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, base);
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    rocksdb::ColumnFamilyOptions o = base;
    if (static_cast<Cf>(i) == Cf::kDedup) o.compaction_filter = dedup_filter;
    if (static_cast<Cf>(i) == Cf::kLog) {
      // Appends are sequential per partition: larger buffers, no point lookups.
      o.write_buffer_size = options.write_buffer_bytes * 2;
    }
    cfs.emplace_back(CfName(static_cast<Cf>(i)), o);
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 3;
  db_options.max_total_wal_size = 256ull << 20;

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, dir, cfs, &handles, &raw);
  if (!s.ok()) {
    delete dedup_filter;
    return FromRocks(s, ("open " + dir).c_str());
  }
  auto store = std::unique_ptr<Store>(new Store());
  store->dir_ = dir;
  store->db_.reset(raw);
  store->dedup_filter_.reset(dedup_filter);
  // handles[0] is the default family; ours follow in Cf order.
  store->default_handle_ = handles[0];
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) store->handles_[i] = handles[i + 1];

  // Continue bad-row sequence numbers after the newest stored one.
  std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator({}, store->cf(Cf::kBadRows)));
  it->SeekToLast();
  if (it->Valid() && it->key().size() == 16) {
    store->bad_row_seq_ = ReadU64(std::string_view(it->key().data() + 8, 8)) + 1;
  }
  return store;
}

Store::~Store() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->DestroyColumnFamilyHandle(default_handle_);
  db_->Close();
  db_.reset();
}

uint64_t Store::ApproximateBytes() const {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
    if (db_->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) total += v;
  }
  return total;
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
  return FromRocks(db_->Write({}, &batch), "write bad rows");
}

std::vector<std::string> Store::RecentBadRows(size_t limit) const {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(Cf::kBadRows)));
  for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
    out.push_back(it->value().ToString());
  }
  return out;
}

common::Status Store::TrimBadRows(int64_t cutoff_ms) {
  std::string begin = BadRowKey(0, 0);
  std::string end = BadRowKey(static_cast<uint64_t>(std::max<int64_t>(cutoff_ms, 0)), 0);
  return FromRocks(db_->DeleteRange({}, cf(Cf::kBadRows), begin, end), "trim bad rows");
}

}  // namespace streamrec::store
