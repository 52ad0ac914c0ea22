// Per-client token buckets for the public endpoints. A client key is whatever the caller
// chooses (client IP, or tenant + user id for a verified user). Buckets live in 16
// mutex-guarded shards, each an LRU-ordered map capped at max_entries / 16: a check is
// O(1), and when a shard is full its least recently seen bucket is dropped. A dropped
// bucket had been idle longest; if it was not yet full again its client simply gets a
// fresh burst, which is the price of bounded memory.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/metrics.h"
#include "common/string_hash.h"

namespace streamrec::auth {

struct RateLimitOptions {
  double rate_per_s = 20;       //!< sustained requests per second per client; <= 0 disables
  double burst = 40;            //!< bucket size: requests a fresh client may make at once
  size_t max_entries = 100000;  //!< buckets kept in memory (all shards together)
};

class RateLimiter {
 public:
  static constexpr size_t kShards = 16;

  //! `name` labels the metrics (e.g. "recommendations"); `metrics` may be null.
  //! NOTE: the registry must outlive the limiter (it removes its gauge on destruction).
  explicit RateLimiter(RateLimitOptions options, common::Registry* metrics = nullptr,
                       std::string name = "public");
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  //! Takes one token from `key`'s bucket; false (and counted) when it is empty.
  //! `now_ns` is a monotonic clock (common::MonoNs); thread-safe.
  bool Allow(std::string_view key, int64_t now_ns);

  const RateLimitOptions& options() const { return options_; }
  double rate_per_s() const { return options_.rate_per_s; }
  double burst() const { return options_.burst; }
  //! Buckets held now.
  size_t size() const;
  uint64_t rejected() const;

 private:
  struct Bucket {
    double tokens;
    int64_t last_ns;
    std::list<const std::string*>::iterator lru;  // position in Shard::lru
  };
  struct alignas(64) Shard {  // own cache line: no false sharing between shards
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket, common::StringHash, std::equal_to<>> buckets;
    std::list<const std::string*> lru;  // map keys (node-stable), most recently seen first
    uint64_t rejected = 0;
  };

  RateLimitOptions options_;
  size_t per_shard_cap_;
  common::Registry* metrics_;
  common::Counter* rejected_counter_ = nullptr;
  std::array<Shard, kShards> shards_;
};

}  // namespace streamrec::auth
