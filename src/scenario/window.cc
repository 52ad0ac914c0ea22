#include "scenario/window.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <unordered_set>

namespace streamrec::scenario {
namespace {

using expr::Value;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Orders values of one kind (numbers together); false for incomparable pairs.
bool Less(const Value& a, const Value& b, bool* comparable) {
  *comparable = true;
  if (a.is_number() && b.is_number()) return a.as_number() < b.as_number();
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_time() && b.is_time()) return a.as_time().ms < b.as_time().ms;
  *comparable = false;
  return false;
}

// Identity of a value for set / approx_distinct: the kind plus its text.
std::string Identity(const Value& v) {
  std::string id(1, static_cast<char>('0' + static_cast<int>(v.kind())));
  id += v.is_string() ? v.as_string() : expr::ToText(v);
  return id;
}

// HyperLogLog with 64 registers (about 13% error), linear counting below 2.5·m: exact enough for
// windows of a few hundred items at a fixed 64 bytes.
int64_t ApproxDistinct(const std::vector<const Value*>& values) {
  constexpr int kBits = 6;
  constexpr int kRegisters = 1 << kBits;
  uint8_t registers[kRegisters] = {};
  for (const Value* v : values) {
    uint64_t h = std::hash<std::string>{}(Identity(*v));
    h ^= h >> 33;  // std::hash of strings is good, but mix in case of an identity hash
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    size_t index = h & (kRegisters - 1);
    uint64_t rest = h >> kBits;
    uint8_t rank = rest == 0 ? 64 - kBits + 1 : std::countr_zero(rest) + 1;
    registers[index] = std::max(registers[index], rank);
  }
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : registers) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  double m = kRegisters;
  double estimate = 0.709 * m * m / sum;
  if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / zeros);
  return std::llround(estimate);
}

WindowSpec WithNames(WindowSpec spec) {
  for (size_t a = spec.names.size(); a < spec.aggregates.size(); ++a) {
    spec.names.push_back(std::to_string(a));
  }
  return spec;
}

bool OnlyLists(const WindowSpec& spec) {
  if (spec.kind != WindowKind::kSliding) return false;
  for (AggregateKind a : spec.aggregates) {
    if (a != AggregateKind::kList) return false;
  }
  return true;
}

}  // namespace

WindowState::WindowState(WindowSpec spec)
    : spec_(WithNames(std::move(spec))),
      stride_(spec_.aggregates.size() + 1),
      list_only_(OnlyLists(spec_)) {}

bool WindowState::Add(std::string_view key, int64_t time_ms, std::span<Value> inputs,
                      WindowOutput* out, uint64_t previous) {
  std::lock_guard lock(mu_);
  max_time_ms_ = std::max(max_time_ms_, time_ms);
  EvictExpired();

  auto found = index_.find(key);
  if (found == index_.end()) {
    while (index_.size() >= spec_.max_groups && !lru_.empty()) {
      items_ -= Size(lru_.back());
      index_.erase(lru_.back().key);
      lru_.pop_back();
      ++evicted_;
    }
    lru_.push_front(Group{.key = std::string(key), .key_value = Value(key)});
    found = index_.emplace(lru_.front().key, lru_.begin()).first;
  } else if (found->second != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, found->second);
  }
  Group& group = *found->second;

  if (group.watermark_ms != INT64_MIN && time_ms < group.watermark_ms - spec_.allowed_lateness_ms) {
    return false;
  }
  // First item later than `t` (upper) or not earlier than `t` (lower).
  auto bound = [&](int64_t t, bool upper) {
    size_t lo = 0, hi = Size(group);
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      int64_t m = Time(group, mid);
      if (upper ? m <= t : m < t) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  size_t inserted = bound(time_ms, true);
  const size_t before_add = Size(group);
  const bool appended = inserted == before_add;
  const bool update = list_only_ && previous != 0 && previous == group.version && appended &&
                      spec_.aggregates.size() <= kMaxUpdatedLists;
  if (group.head > 0 && group.rows.size() + stride_ > group.rows.capacity()) {
    // The rows that left make room: moved down once, rather than growing the buffer.
    group.rows.erase(group.rows.begin(), group.rows.begin() + static_cast<ptrdiff_t>(group.head));
    group.head = 0;
  }
  if (appended) {
    // In time order, the usual case: appended, without the general insert's shifting.
    group.rows.emplace_back(expr::TimeMs{time_ms});
    for (size_t a = 0; a + 1 < stride_; ++a) group.rows.push_back(std::move(inputs[a]));
  } else {
    auto row = group.rows.begin() + static_cast<ptrdiff_t>(group.head + inserted * stride_);
    row = group.rows.emplace(row, expr::TimeMs{time_ms});
    group.rows.insert(
        row + 1, std::make_move_iterator(inputs.begin()),
        std::make_move_iterator(inputs.begin() + static_cast<ptrdiff_t>(stride_ - 1)));
  }
  ++items_;
  group.watermark_ms = std::max(group.watermark_ms, time_ms);

  group.version = ++last_version_;
  out->version = group.version;

  const size_t removed = Expired(group);
  // What leaves, per aggregate, when the last output is updated rather than made again.
  size_t removed_values[kMaxUpdatedLists] = {};
  if (update) {
    for (size_t i = 0; i < removed; ++i) {
      for (size_t a = 0; a + 1 < stride_; ++a) {
        removed_values[a] += !Row(group, i)[1 + a].is_null();
      }
    }
  }
  DropOldest(group, removed * stride_);
  items_ -= removed;
  // The event's own item may have been purged (an out-of-order event behind the sliding window,
  // or beyond max_items): its window is then computed without it.
  inserted = inserted >= removed ? inserted - removed : SIZE_MAX;

  const size_t n = Size(group);
  auto time = [&](size_t i) { return Time(group, i); };
  size_t begin = 0, end = n;
  switch (spec_.kind) {
    case WindowKind::kSliding:
      out->end_ms = group.watermark_ms + 1;
      out->start_ms = group.watermark_ms - spec_.size_ms + 1;
      break;
    case WindowKind::kTumbling: {
      out->start_ms = FloorDiv(time_ms, spec_.size_ms) * spec_.size_ms;
      out->end_ms = out->start_ms + spec_.size_ms;
      begin = bound(out->start_ms, false);
      end = bound(out->end_ms, false);
      break;
    }
    case WindowKind::kSession: {
      if (inserted == SIZE_MAX || n == 0) {
        begin = end = 0;
        out->start_ms = time_ms;
        out->end_ms = time_ms + spec_.gap_ms;
        break;
      }
      begin = inserted;
      while (begin > 0 && time(begin) - time(begin - 1) < spec_.gap_ms) --begin;
      end = inserted + 1;
      while (end < n && time(end) - time(end - 1) < spec_.gap_ms) ++end;
      out->start_ms = time(begin);
      out->end_ms = time(end - 1) + spec_.gap_ms;
      break;
    }
  }
  // Sliding: the window is the whole group, and its last item the one just added (unless it
  // was dropped, beyond max_items).
  if (!(update && inserted != SIZE_MAX && UpdateLists(group, removed_values, out))) {
    Aggregate(group, begin, end, out);
  }
  return true;
}

void WindowState::DropOldest(Group& group, size_t values) {
  if (values == 0) return;
  if (group.head + values == group.rows.size()) {
    group.rows.clear();
    group.head = 0;
    return;
  }
  for (size_t v = group.head; v < group.head + values; ++v) group.rows[v].Reset();
  group.head += values;
}

void WindowState::EvictExpired() {
  // Only the least recently updated groups are checked: O(1) per event, and a group updated
  // recently in processing order is rarely expired in event time.
  while (!lru_.empty() && lru_.back().watermark_ms != INT64_MIN &&
         lru_.back().watermark_ms < max_time_ms_ - spec_.ttl_ms) {
    items_ -= Size(lru_.back());
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++evicted_;
  }
}

size_t WindowState::Expired(const Group& group) const {
  const size_t n = Size(group);
  auto time = [&](size_t i) { return Time(group, i); };
  size_t drop = 0;
  switch (spec_.kind) {
    case WindowKind::kSliding: {
      // Items at or before watermark - size have left the window for good (the watermark never
      // goes back).
      int64_t cutoff = group.watermark_ms - spec_.size_ms;
      while (drop < n && time(drop) <= cutoff) ++drop;
      break;
    }
    case WindowKind::kTumbling: {
      // Keep the windows an event that is not late may still fall in.
      int64_t oldest = group.watermark_ms - spec_.allowed_lateness_ms;
      int64_t keep_from = FloorDiv(oldest, spec_.size_ms) * spec_.size_ms;
      while (drop < n && time(drop) < keep_from) ++drop;
      break;
    }
    case WindowKind::kSession: {
      // A session whose last item is at or before (watermark - lateness - gap) can no longer be
      // extended or merged by an event that is not late.
      int64_t closed_before = group.watermark_ms - spec_.allowed_lateness_ms - spec_.gap_ms;
      for (size_t i = 1; i < n; ++i) {
        if (time(i - 1) > closed_before) break;
        if (time(i) - time(i - 1) >= spec_.gap_ms) drop = i;
      }
      break;
    }
  }
  if (n - drop > spec_.max_items) drop = n - spec_.max_items;
  return drop;
}

void WindowState::Aggregate(const Group& group, size_t begin, size_t end, WindowOutput* out) const {
  const size_t width = spec_.aggregates.size();
  out->items = end - begin;
  expr::Map* record = out->record.UniqueMap();
  if (!record || record->size() != width + 4) {
    expr::Map fresh;
    fresh.reserve(width + 4);
    for (size_t a = 0; a < width; ++a) fresh.push_back({spec_.names[a], Value()});
    for (const char* field : {"key", "start", "end", "size"}) fresh.push_back({field, Value()});
    out->record = Value(std::move(fresh));
    record = out->record.UniqueMap();
  } else {
    // Last event's record, maybe from another window step on this thread.
    for (size_t a = 0; a < width; ++a) {
      if ((*record)[a].key != spec_.names[a]) (*record)[a].key = spec_.names[a];
    }
  }
  // The non-null inputs of aggregate `a` in the window, oldest first.
  auto for_each = [&](size_t a, auto&& f) {
    for (size_t i = begin; i < end; ++i) {
      const Value& v = Row(group, i)[1 + a];
      if (!v.is_null()) f(v);
    }
  };
  for (size_t a = 0; a < width; ++a) {
    Value& slot = (*record)[a].value;
    switch (spec_.aggregates[a]) {
      case AggregateKind::kList: {
        expr::List* list = slot.UniqueList();
        if (!list) {
          // Last event's list is still held (a trace, a deferred run): a new one, sized once.
          expr::List fresh;
          fresh.reserve(end - begin);
          slot = Value(std::move(fresh));
          list = slot.UniqueList();
        }
        list->clear();
        for_each(a, [&](const Value& v) { list->push_back(v); });
        break;
      }
      case AggregateKind::kSet: {
        // Distinct values, each at the position of its newest occurrence, oldest first.
        std::vector<const Value*> values;
        for_each(a, [&](const Value& v) { values.push_back(&v); });
        expr::List list;
        std::unordered_set<std::string> seen;
        for (size_t i = values.size(); i-- > 0;) {
          if (seen.insert(Identity(*values[i])).second) list.push_back(*values[i]);
        }
        std::reverse(list.begin(), list.end());
        slot = Value(std::move(list));
        break;
      }
      case AggregateKind::kCount: {
        int64_t n = 0;
        for_each(a, [&](const Value&) { ++n; });
        slot = Value(n);
        break;
      }
      case AggregateKind::kSum: {
        int64_t isum = 0;
        double dsum = 0;
        bool all_int = true;
        for_each(a, [&](const Value& v) {
          if (!v.is_number()) return;
          int64_t next = 0;
          if (all_int && v.is_int() && !__builtin_add_overflow(isum, v.as_int(), &next)) {
            isum = next;
            return;
          }
          if (all_int) dsum = static_cast<double>(isum);
          all_int = false;
          dsum += v.as_number();
        });
        slot = all_int ? Value(isum) : Value(dsum);
        break;
      }
      case AggregateKind::kMin:
      case AggregateKind::kMax: {
        const Value* best = nullptr;
        bool is_max = spec_.aggregates[a] == AggregateKind::kMax;
        for_each(a, [&](const Value& v) {
          bool comparable = true;
          if (!best) {
            best = &v;
          } else if (is_max ? Less(*best, v, &comparable) : Less(v, *best, &comparable)) {
            best = &v;
          }
        });
        slot = best ? *best : Value();
        break;
      }
      case AggregateKind::kLast: {
        const Value* last = nullptr;
        for_each(a, [&](const Value& v) { last = &v; });
        slot = last ? *last : Value();
        break;
      }
      case AggregateKind::kApproxDistinct: {
        std::vector<const Value*> values;
        for_each(a, [&](const Value& v) { values.push_back(&v); });
        slot = Value(ApproxDistinct(values));
        break;
      }
    }
  }
  (*record)[width].value = group.key_value;
  SetBounds(*record, *out);
}

bool WindowState::UpdateLists(const Group& group, const size_t* removed_values,
                              WindowOutput* out) const {
  const size_t width = spec_.aggregates.size();
  expr::Map* record = out->record.UniqueMap();
  if (!record || record->size() != width + 4) return false;
  // Every list is checked before any is changed. (The record is this window's output for the
  // group: its names and key are the group's already.)
  for (size_t a = 0; a < width; ++a) {
    const expr::List* list = (*record)[a].value.UniqueList();
    if (!list || list->size() < removed_values[a]) return false;
  }
  const size_t n = Size(group);
  const Value* newest = Row(group, n - 1);
  for (size_t a = 0; a < width; ++a) {
    expr::List& list = *(*record)[a].value.UniqueList();
    list.erase(list.begin(), list.begin() + static_cast<ptrdiff_t>(removed_values[a]));
    if (!newest[1 + a].is_null()) list.push_back(newest[1 + a]);
  }
  out->items = n;
  SetBounds(*record, *out);
  return true;
}

void WindowState::SetBounds(expr::Map& record, const WindowOutput& out) const {
  const size_t width = spec_.aggregates.size();
  record[width + 1].value = Value(expr::TimeMs{out.start_ms});
  record[width + 2].value = Value(expr::TimeMs{out.end_ms});
  record[width + 3].value = Value(static_cast<int64_t>(out.items));
}

size_t WindowState::groups() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

size_t WindowState::items() const {
  std::lock_guard lock(mu_);
  return items_;
}

uint64_t WindowState::evicted_groups() const {
  std::lock_guard lock(mu_);
  return evicted_;
}

bool ParseDuration(std::string_view text, int64_t* ms) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15) return false;
  int64_t n = std::stoll(std::string(text.substr(0, digits)));
  std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit.empty() || unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60 * 1000;
  else if (unit == "h")
    scale = 3600 * 1000;
  else if (unit == "d")
    scale = 24ll * 3600 * 1000;
  else
    return false;
  *ms = n * scale;
  return true;
}

}  // namespace streamrec::scenario
