#include "pipeline/user_state.h"

#include <algorithm>
#include <bit>
#include <unordered_set>

#include "common/byte_codec.h"

namespace streamrec::pipeline {

using common::ByteReader;
using common::PutFixed;
using common::PutSigned;
using common::PutString;
using common::PutVarint;

namespace {

constexpr uint8_t kUserStateVersion = 1;
constexpr uint8_t kRecListVersion = 2;
constexpr uint8_t kRecListVersionWithoutOrigin = 1;

bool IsWindowType(events::EventType t) {
  return t == events::EventType::kView || t == events::EventType::kAddToCart;
}

}  // namespace

std::vector<models::WindowItem> UserState::Window(int64_t window_ms, size_t max_items) const {
  std::vector<models::WindowItem> out;
  if (max_items == 0) return out;
  const int64_t from = last_event_ms - window_ms;
  std::unordered_set<std::string_view> seen;
  // Newest first, so that a repeated item keeps its newest timestamp.
  for (auto it = history.rbegin(); it != history.rend() && out.size() < max_items; ++it) {
    if (it->timestamp_ms < from) break;  // history is in timestamp order
    if (!IsWindowType(it->type) || !seen.insert(it->item_id).second) continue;
    out.push_back({it->item_id, it->timestamp_ms});
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void ApplyEvent(UserState &state, const events::Event &event, uint64_t seq,
                const PipelineOptions &options) {
  const int64_t ts = event.timestamp_ms;
  const bool fresh = state.sessions == 0;
  bool new_session;
  if (!event.session_id.empty()) {
    new_session = event.session_id != state.session_id;
  } else {
    new_session = fresh || ts - state.last_event_ms > options.session_gap_ms;
  }
  if (new_session) {
    ++state.sessions;
    state.session_id = event.session_id.empty() ? std::to_string(state.sessions) : event.session_id;
    state.session_start_ms = ts;
    state.session_events = 0;
  }
  ++state.session_events;
  state.session_start_ms = std::min(state.session_start_ms, ts);  // a late event
  state.last_event_ms = fresh ? ts : std::max(state.last_event_ms, ts);

  auto &h = state.history;
  if (!event.item_id.empty()) {
    // Out-of-order events go to their place in time; equal times keep arrival
    // order.
    auto pos = std::upper_bound(h.begin(), h.end(), ts, [](int64_t t, const HistoryEntry &e) {
      return t < e.timestamp_ms;
    });
    h.insert(pos, HistoryEntry{event.item_id, event.type, ts, seq});
  }
  const int64_t oldest = state.last_event_ms - options.user_ttl_ms;
  size_t drop = 0;
  while (drop < h.size() &&
         (h.size() - drop > options.history_max_events || h[drop].timestamp_ms < oldest)) {
    ++drop;
  }
  h.erase(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(drop));
}

UserState StateBefore(const UserState &state, uint64_t seq) {
  UserState before;
  for (const auto &e : state.history) {
    if (e.seq >= seq) continue;
    before.last_event_ms =
        before.history.empty() ? e.timestamp_ms : std::max(before.last_event_ms, e.timestamp_ms);
    before.history.push_back(e);
  }
  return before;
}

std::string EncodeUserState(const UserState &s) {
  std::string out;
  out.reserve(32 + s.history.size() * 24);
  out.push_back(static_cast<char>(kUserStateVersion));
  PutString(out, s.session_id);
  PutSigned(out, s.session_start_ms);
  PutSigned(out, s.last_event_ms);
  PutVarint(out, s.session_events);
  PutVarint(out, s.sessions);
  PutVarint(out, s.history.size());
  // Deltas: timestamps are sorted and seqs nearly so, which keeps the varints
  // short.
  int64_t prev_ts = 0;
  uint64_t prev_seq = 0;
  for (const auto &e : s.history) {
    PutString(out, e.item_id);
    out.push_back(static_cast<char>(e.type));
    PutSigned(out, e.timestamp_ms - prev_ts);
    PutSigned(out, static_cast<int64_t>(e.seq - prev_seq));
    prev_ts = e.timestamp_ms;
    prev_seq = e.seq;
  }
  return out;
}

common::Result<UserState> DecodeUserState(std::string_view bytes) {
  ByteReader r(bytes);
  uint8_t version = r.Byte();
  if (!r.ok() || version != kUserStateVersion) {
    return common::Status::Internal("user state: unknown version " + std::to_string(version));
  }
  UserState s;
  s.session_id = r.String();
  s.session_start_ms = r.Signed();
  s.last_event_ms = r.Signed();
  s.session_events = static_cast<uint32_t>(r.Varint());
  s.sessions = r.Varint();
  size_t n = r.Count();
  s.history.reserve(n);
  int64_t prev_ts = 0;
  uint64_t prev_seq = 0;
  for (size_t i = 0; i < n && r.ok(); ++i) {
    HistoryEntry e;
    e.item_id = r.String();
    uint8_t type = r.Byte();
    if (type > static_cast<uint8_t>(events::kLastEventType)) {
      return common::Status::Internal("user state: bad event type");
    }
    e.type = static_cast<events::EventType>(type);
    e.timestamp_ms = prev_ts + r.Signed();
    e.seq = prev_seq + static_cast<uint64_t>(r.Signed());
    prev_ts = e.timestamp_ms;
    prev_seq = e.seq;
    s.history.push_back(std::move(e));
  }
  if (!r.ok() || !r.done()) return common::Status::Internal("user state: truncated or corrupt");
  return s;
}

std::string EncodeRecList(const RecList &recs) {
  std::string out;
  out.reserve(24 + recs.items.size() * 20);
  // The pipeline's own lists stay version 1, readable by binaries before observer lists.
  out.push_back(static_cast<char>(recs.from_observer ? kRecListVersion
                                                     : kRecListVersionWithoutOrigin));
  PutString(out, recs.model);
  PutSigned(out, recs.generated_at_ms);
  PutSigned(out, recs.last_event_ms);
  PutVarint(out, recs.items.size());
  for (const auto &item : recs.items) {
    PutString(out, item.item_id);
    PutFixed<double>(out, item.score);
  }
  if (recs.from_observer) out.push_back(1);
  return out;
}

common::Result<RecList> DecodeRecList(std::string_view bytes) {
  ByteReader r(bytes);
  uint8_t version = r.Byte();
  // Version 2 appended from_observer; version 1 lists are the pipeline's own.
  if (!r.ok() || (version != kRecListVersion && version != kRecListVersionWithoutOrigin)) {
    return common::Status::Internal("rec list: unknown version " + std::to_string(version));
  }
  RecList recs;
  recs.model = r.String();
  recs.generated_at_ms = r.Signed();
  recs.last_event_ms = r.Signed();
  size_t n = r.Count();
  recs.items.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) {
    models::ScoredItem item;
    item.item_id = r.String();
    item.score = r.Fixed<double>();
    recs.items.push_back(std::move(item));
  }
  if (version == kRecListVersion) recs.from_observer = r.Byte() != 0;
  if (!r.ok() || !r.done()) return common::Status::Internal("rec list: truncated or corrupt");
  return recs;
}

}  // namespace streamrec::pipeline
