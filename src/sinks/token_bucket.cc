#include "sinks/token_bucket.h"

#include <algorithm>
#include <thread>

namespace streamrec::sinks {

TokenBucket::TokenBucket(double capacity, double restore_per_s)
    : capacity_(capacity),
      rate_(restore_per_s),
      tokens_(capacity),
      last_(std::chrono::steady_clock::now()) {}

bool TokenBucket::unlimited() const { return capacity_ <= 0 || rate_ <= 0; }

void TokenBucket::RefillLocked() {
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(capacity_, tokens_ + secs * rate_);
}

bool TokenBucket::Acquire(double cost, const std::function<bool()>& give_up, bool* waited) {
  if (waited) *waited = false;
  if (unlimited()) return true;
  for (;;) {
    double wait_s;
    {
      std::lock_guard lock(mu_);
      RefillLocked();
      double need = std::min(cost, capacity_);
      if (tokens_ >= need) {
        tokens_ -= need;
        return true;
      }
      wait_s = (need - tokens_) / rate_;
    }
    if (give_up && give_up()) return false;
    if (waited) *waited = true;
    // Short naps so that a Stop() deadline is noticed promptly.
    std::this_thread::sleep_for(std::chrono::duration<double>(std::clamp(wait_s, 0.0005, 0.02)));
  }
}

void TokenBucket::Observe(double currently_available, double maximum_available,
                          double restore_rate) {
  std::lock_guard lock(mu_);
  RefillLocked();
  if (maximum_available > 0) capacity_ = maximum_available;
  if (restore_rate > 0) rate_ = restore_rate;
  tokens_ = std::clamp(std::min(tokens_, currently_available), 0.0, capacity_);
}

double TokenBucket::SecondsUntil(double cost) {
  std::lock_guard lock(mu_);
  if (unlimited()) return 0;
  RefillLocked();
  double need = std::min(cost, capacity_);
  return tokens_ >= need ? 0 : (need - tokens_) / rate_;
}

double TokenBucket::available() {
  std::lock_guard lock(mu_);
  RefillLocked();
  return tokens_;
}

}  // namespace streamrec::sinks
