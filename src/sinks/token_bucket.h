// A token bucket shared by one sink's senders: the sink never spends more than `capacity`
// at once and `restore_per_s` on average (Shopify's GraphQL cost model: 1000 points,
// restored at 50/s on standard plans). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace streamrec::sinks {

class TokenBucket {
 public:
  //! capacity <= 0 or restore_per_s <= 0: unlimited. Starts full.
  TokenBucket(double capacity, double restore_per_s);

  bool unlimited() const;
  //! Takes `cost` tokens (clamped to the capacity), sleeping until they are there.
  //! Returns false, taking nothing, once `give_up()` says so (polled every few ms).
  //! `*waited` is set when it had to wait.
  bool Acquire(double cost, const std::function<bool()>& give_up, bool* waited = nullptr);
  //! The server's own account (Shopify throttleStatus) wins: never believe more tokens
  //! than it reports, and adopt its capacity and restore rate (plans differ).
  void Observe(double currently_available, double maximum_available, double restore_rate);
  //! Seconds until `cost` tokens are available (0 when they are now).
  double SecondsUntil(double cost);
  double available();

 private:
  void RefillLocked();

  std::mutex mu_;
  double capacity_;
  double rate_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace streamrec::sinks
