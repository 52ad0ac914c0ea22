// Every RocksDB key layout in one place. Integers are big-endian so that byte order
// equals numeric order within a column family.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace streamrec::store {

//! Column families; kLog, kDedup, kBadRows, kMeta, kAuth live in the `log` database, kState
//! and kItems in the `state` database (see Store).
enum class Cf : int {
  kLog = 0,   //!< LogKey(partition, seq) -> EncodeEvent(event)
  kDedup,     //!< DedupKey(tenant, event_id) -> u64 BE collector ms (TTL by compaction)
  kState,     //!< per-user state, stored recommendations, consumer offsets
  kItems,     //!< item model checkpoint (popularity, statistics, co-visitation)
  kBadRows,   //!< BadRowKey(ms, seq) -> JSON of the rejected input and reason
  kMeta,      //!< format version, partition count
  kAuth,      //!< ApiKeyKey(key_id) -> auth::KeyStore record (hash only, never a secret)
  //! shop catalog and rules (src/catalog, src/rules), `state` db, written synced since it
  //! is not rebuilt from the log: "i" tenant \0 id -> item, "h"/"s" tenant \0 handle or
  //! Shopify id -> id, "n" tenant -> u64 BE item count, "r" tenant \0 placement -> rules JSON
  kCatalog,
  kCount,
};
const char* CfName(Cf cf);

void AppendU32(std::string& out, uint32_t v);
void AppendU64(std::string& out, uint64_t v);
uint32_t ReadU32(std::string_view in);  // REQUIRES: in.size() >= 4
uint64_t ReadU64(std::string_view in);  // REQUIRES: in.size() >= 8

// --- kLog
std::string LogKey(uint32_t partition, uint64_t seq);
std::string LogPartitionPrefix(uint32_t partition);
//! REQUIRES: key was made by LogKey.
inline uint64_t LogKeySeq(std::string_view key) { return ReadU64(key.substr(4)); }

// --- kDedup
std::string DedupKey(std::string_view tenant, std::string_view event_id);

// --- kState
//! "u" tenant \0 user -> pipeline user state (window, session)
std::string UserStateKey(std::string_view tenant, std::string_view user);
//! "r" tenant \0 user -> stored recommendation list
std::string RecsKey(std::string_view tenant, std::string_view user);
//! "o" consumer \0 partition(u32) -> u64 next seq to process
std::string OffsetKey(std::string_view consumer, uint32_t partition);

// --- kState, KPIs (src/kpi): every key starts with kKpiPrefix
inline constexpr std::string_view kKpiPrefix = "k";
//! "ka" tenant \0 placement \0 model \0 variant \0 hour-start ms (u64 BE) -> KPI counts
inline constexpr std::string_view kKpiBucketPrefix = "ka";
//! "ku" tenant \0 user -> the user's recently shown and clicked lists (KPI attribution)
inline std::string KpiUserKey(std::string_view tenant, std::string_view user) {
  std::string k = "ku";
  k.append(tenant);
  k.push_back('\0');
  k.append(user);
  return k;
}
inline std::string KpiBucketKey(std::string_view tenant, std::string_view placement,
                                std::string_view model, std::string_view variant,
                                uint64_t hour_ms) {
  std::string k(kKpiBucketPrefix);
  for (std::string_view part : {tenant, placement, model, variant}) {
    k.append(part);
    k.push_back('\0');
  }
  AppendU64(k, hour_ms);
  return k;
}

// --- kItems
//! "i" tenant \0 item -> item state
std::string ItemKey(std::string_view tenant, std::string_view item);
//! "c" consumer \0 partition -> u64 next seq covered by the item checkpoint
std::string ItemOffsetKey(uint32_t partition);

// --- kBadRows
std::string BadRowKey(uint64_t ms, uint64_t seq);

// --- kMeta
inline constexpr std::string_view kMetaFormatVersion = "format_version";
inline constexpr std::string_view kMetaPartitions = "partitions";
//! kMetaLogFirstSeqPrefix + partition(u32) -> u64 oldest seq kept by retention, so that a
//! partition emptied by retention does not restart at seq 0 after a reopen.
inline constexpr std::string_view kMetaLogFirstSeqPrefix = "log_first_seq";

// --- kAuth
//! "k" key_id -> API key record (see auth/key_store.cc)
inline std::string ApiKeyKey(std::string_view key_id) {
  std::string k = "k";
  k.append(key_id);
  return k;
}

}  // namespace streamrec::store
