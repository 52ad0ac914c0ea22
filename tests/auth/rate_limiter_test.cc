#include "auth/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace streamrec::auth {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(RateLimiterTest, AllowsBurstThenRefillsAtRate) {
  common::Registry metrics;
  RateLimiter limiter({.rate_per_s = 10, .burst = 5, .max_entries = 1000}, &metrics, "recs");
  EXPECT_EQ(limiter.rate_per_s(), 10);
  EXPECT_EQ(limiter.burst(), 5);
  int64_t t = 42 * kSecond;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Allow("1.2.3.4", t)) << i;
  EXPECT_FALSE(limiter.Allow("1.2.3.4", t));
  EXPECT_TRUE(limiter.Allow("5.6.7.8", t));  // other clients have their own bucket
  t += kSecond / 10;                         // one token back
  EXPECT_TRUE(limiter.Allow("1.2.3.4", t));
  EXPECT_FALSE(limiter.Allow("1.2.3.4", t));
  t += 10 * kSecond;  // refills to the burst, not beyond
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Allow("1.2.3.4", t)) << i;
  EXPECT_FALSE(limiter.Allow("1.2.3.4", t));
  EXPECT_FALSE(limiter.Allow("1.2.3.4", t - kSecond));  // clock going back refills nothing
  EXPECT_EQ(limiter.rejected(), 4u);
  EXPECT_EQ(metrics.CounterValue("streamrec_rate_limited_total", {{"limiter", "recs"}}), 4u);
  EXPECT_NE(metrics.RenderPrometheus().find("streamrec_rate_limiter_buckets{limiter=\"recs\"} 2"),
            std::string::npos);
}

TEST(RateLimiterTest, EntriesAreBoundedAndIdleBucketsEvictedFirst) {
  RateLimiter limiter({.rate_per_s = 1, .burst = 1, .max_entries = 160});
  int64_t t = kSecond;
  for (int i = 0; i < 100000; ++i) limiter.Allow("client-" + std::to_string(i), t);
  EXPECT_LE(limiter.size(), 160u);
  EXPECT_GE(limiter.size(), 150u);  // shards fill about evenly

  // A client seen a moment ago keeps its (empty) bucket while idle ones go.
  RateLimiter small({.rate_per_s = 1, .burst = 1, .max_entries = 16 * 4});
  EXPECT_TRUE(small.Allow("hot", t));
  for (int i = 0; i < 1000; ++i) {
    small.Allow("cold-" + std::to_string(i), t);
    if (i % 2 == 0) {
      EXPECT_FALSE(small.Allow("hot", t)) << i;
    }
  }
  EXPECT_LE(small.size(), 64u);
}

TEST(RateLimiterTest, ZeroRateDisables) {
  RateLimiter limiter({.rate_per_s = 0, .burst = 1, .max_entries = 10});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(limiter.Allow("x", 0));
  EXPECT_EQ(limiter.size(), 0u);
}

TEST(RateLimiterTest, ThreadSafeAndExactUnderContention) {
  RateLimiter limiter({.rate_per_s = 1, .burst = 1000, .max_entries = 100000});
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (limiter.Allow("shared", kSecond)) allowed.fetch_add(1);
        limiter.Allow("own-" + std::to_string(i), kSecond);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 1000);
  EXPECT_EQ(limiter.size(), 2001u);
}

}  // namespace
}  // namespace streamrec::auth
