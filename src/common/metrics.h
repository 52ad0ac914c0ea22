// A small Prometheus-style metrics registry. Lookups take a lock; hot paths keep the
// returned references (stable for the registry's lifetime) and only touch atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace streamrec::common {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  //! What Inc() added, plus what the live sources count now.
  uint64_t value() const;

  //! A count kept elsewhere that is part of this counter while `owner` lives: a hot path that
  //! already counts for its own purposes then pays for one atomic, not two. The owner must call
  //! RetireLive before `read` becomes invalid; its last count then stays in the counter (no
  //! reading ever goes back).
  void AddLive(const void* owner, std::function<uint64_t()> read);
  void RetireLive(const void* owner);

 private:
  std::atomic<uint64_t> value_{0};
  mutable std::mutex live_mu_;  // only for the live sources (added, retired and read rarely)
  std::vector<std::pair<const void*, std::function<uint64_t()>>> live_;
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

//! Cumulative histogram over fixed upper bounds (in seconds for latencies).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  //! Approximate quantile (upper bound of the bucket holding it; linear inside).
  double Quantile(double q) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket_count(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

//! Latency buckets from 10 µs to 10 s, in seconds.
std::vector<double> LatencyBuckets();

class Registry {
 public:
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const Labels& labels = {}, std::vector<double> bounds = LatencyBuckets());
  //! A gauge computed when metrics are rendered (state sizes and the like).
  //! NOTE: the callback must stay valid until the registry is destroyed or
  //! RemoveCallbacks(owner) is called.
  void AddGaugeCallback(const std::string& name, const std::string& help, const Labels& labels,
                        std::function<double()> fn, const void* owner = nullptr);
  void RemoveCallbacks(const void* owner);

  //! Value of a counter or 0 when it was never created (tests and benches).
  uint64_t CounterValue(const std::string& name, const Labels& labels = {}) const;

  std::string RenderPrometheus() const;

 private:
  struct Family {
    std::string type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
    struct Callback {
      Labels labels;
      std::function<double()> fn;
      const void* owner;
    };
    std::vector<Callback> callbacks;
  };
  Family& FamilyFor(const std::string& name, const std::string& type, const std::string& help);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace streamrec::common
