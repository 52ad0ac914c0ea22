#include "auth/rate_limiter.h"

#include <algorithm>

namespace streamrec::auth {

RateLimiter::RateLimiter(RateLimitOptions options, common::Registry* metrics, std::string name)
    : options_(options),
      per_shard_cap_(std::max<size_t>(1, options.max_entries / kShards)),
      metrics_(metrics) {
  options_.burst = std::max(1.0, options_.burst);
  if (metrics_) {
    rejected_counter_ =
        &metrics_->GetCounter("streamrec_rate_limited_total",
                              "Requests rejected by a per-client rate limit", {{"limiter", name}});
    metrics_->AddGaugeCallback(
        "streamrec_rate_limiter_buckets", "Per-client rate limit buckets held in memory",
        {{"limiter", name}}, [this] { return static_cast<double>(size()); }, this);
  }
}

RateLimiter::~RateLimiter() {
  if (metrics_) metrics_->RemoveCallbacks(this);
}

bool RateLimiter::Allow(std::string_view key, int64_t now_ns) {
  if (options_.rate_per_s <= 0) return true;
  size_t h = common::StringHash()(key);
  // Shard on high bits: the map inside uses the same hash modulo its bucket count.
  Shard& shard = shards_[(h >> 32 ^ h >> 56) % kShards];
  std::lock_guard lock(shard.mu);
  auto it = shard.buckets.find(key);
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= per_shard_cap_) {
      auto victim = shard.buckets.find(*shard.lru.back());
      shard.lru.pop_back();
      shard.buckets.erase(victim);
    }
    it = shard.buckets.emplace(std::string(key), Bucket{options_.burst, now_ns, {}}).first;
    shard.lru.push_front(&it->first);
    it->second.lru = shard.lru.begin();
  } else {
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
  }
  Bucket& b = it->second;
  if (now_ns > b.last_ns) {  // a clock going backwards refills nothing
    b.tokens = std::min(options_.burst, b.tokens + static_cast<double>(now_ns - b.last_ns) * 1e-9 *
                                                       options_.rate_per_s);
    b.last_ns = now_ns;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  ++shard.rejected;
  if (rejected_counter_) rejected_counter_->Inc();
  return false;
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

uint64_t RateLimiter::rejected() const {
  uint64_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.rejected;
  }
  return n;
}

}  // namespace streamrec::auth
