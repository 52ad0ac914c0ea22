#include "sinks/coalescer.h"

namespace streamrec::sinks {

uint64_t Coalescer::HashItems(const Update& update) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the ids, each with its length
  auto mix = [&h](const void* data, size_t n) {
    auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  for (const auto& item : update.items) {
    uint64_t n = item.item_id.size();
    mix(&n, sizeof n);
    mix(item.item_id.data(), n);
  }
  return h;
}

void Coalescer::Unqueue(Entry& e) {
  due_.erase({e.due_ns, e.seq, *e.fifo_it});
  fifo_.erase(e.fifo_it);
  e.pending.reset();
}

void Coalescer::Enqueue(const std::string& key, Entry& e, int64_t due_ns) {
  e.due_ns = due_ns;
  e.seq = ++seq_;
  due_.emplace(due_ns, e.seq, key);
  e.fifo_it = fifo_.insert(fifo_.end(), key);
}

void Coalescer::ForgetIdle() {
  // Bounded scan: busy users at the front are moved to the back.
  for (size_t scanned = 0; entries_.size() > options_.max_tracked_users && scanned < 16;
       ++scanned) {
    std::string key = lru_.front();
    Entry& e = entries_.at(key);
    if (e.pending || e.in_flight) {
      lru_.splice(lru_.end(), lru_, e.lru_it);
      continue;
    }
    lru_.pop_front();
    entries_.erase(key);
  }
}

Coalescer::Offered Coalescer::Offer(Update update, int64_t now_ns, bool* evicted) {
  *evicted = false;
  std::string key = update.tenant;
  key += '\x1f';
  key += update.user_id;
  uint64_t hash = HashItems(update);
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& e = it->second;
  if (inserted) {
    e.lru_it = lru_.insert(lru_.end(), key);
  } else {
    lru_.splice(lru_.end(), lru_, e.lru_it);
  }
  // What the shop has, or will have once the push in flight lands.
  std::optional<uint64_t> current;
  if (e.in_flight) {
    current = e.in_flight_hash;
  } else if (e.has_sent) {
    current = e.sent_hash;
  }
  if (e.pending) {
    if (current && *current == hash) {  // back to what the shop has: nothing to send
      Unqueue(e);
      return Offered::kReplaced;
    }
    e.pending->update = std::move(update);
    e.pending->hash = hash;
    e.pending->attempt = 0;
    return Offered::kReplaced;
  }
  if (current && *current == hash) {
    if (inserted) ForgetIdle();
    return Offered::kUnchanged;
  }
  e.pending = PendingPush{key, std::move(update), hash, 0};
  Enqueue(key, e, std::max(now_ns, e.last_push_ns + options_.interval_ns));
  if (due_.size() > options_.max_pending_users) {
    Entry& oldest = entries_.at(fifo_.front());
    Unqueue(oldest);
    *evicted = true;
  }
  if (inserted) ForgetIdle();
  return Offered::kQueued;
}

std::optional<PendingPush> Coalescer::TakeDue(int64_t now_ns, bool flush, int64_t* next_due_ns) {
  *next_due_ns = INT64_MAX;
  for (const auto& [due, seq, key] : due_) {
    Entry& e = entries_.at(key);
    if (e.in_flight) continue;
    // A flush skips the per-user interval but still honours retry backoff.
    bool ready = due <= now_ns || (flush && e.pending->attempt == 0);
    if (!ready) {
      *next_due_ns = std::min(*next_due_ns, due);
      if (!flush) break;  // sorted by due: nothing later is ready either
      continue;
    }
    PendingPush push = std::move(*e.pending);
    Unqueue(e);
    e.in_flight = true;
    e.in_flight_hash = push.hash;
    e.last_push_ns = now_ns;
    ++in_flight_;
    return push;
  }
  return std::nullopt;
}

void Coalescer::Done(const std::string& key, bool success) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (!e.in_flight) return;
  e.in_flight = false;
  --in_flight_;
  if (!success) return;
  e.has_sent = true;
  e.sent_hash = e.in_flight_hash;
  if (e.pending && e.pending->hash == e.sent_hash) Unqueue(e);
}

bool Coalescer::Retry(PendingPush push, int64_t due_ns) {
  Entry& e = entries_.at(push.key);
  if (e.in_flight) {
    e.in_flight = false;
    --in_flight_;
  }
  if (e.pending) return false;
  std::string key = push.key;
  e.pending = std::move(push);
  Enqueue(key, e, due_ns);
  return true;
}

std::vector<PendingPush> Coalescer::DrainAll() {
  std::vector<PendingPush> out;
  while (!fifo_.empty()) {
    Entry& e = entries_.at(fifo_.front());
    out.push_back(std::move(*e.pending));
    Unqueue(e);
  }
  return out;
}

}  // namespace streamrec::sinks
