#include "events/event.h"

#include <array>

namespace streamrec::events {

namespace {

constexpr uint8_t kFormatVersion = 1;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

struct Reader {
  std::string_view in;
  bool ok = true;

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      auto b = static_cast<uint8_t>(in.front());
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string String() {
    uint64_t n = Varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

constexpr std::array<std::string_view, 5> kTypeNames = {"view", "add_to_cart", "purchase",
                                                        "remove_from_cart", "other"};

}  // namespace

std::string_view EventTypeName(EventType type) {
  auto i = static_cast<size_t>(type);
  return i < kTypeNames.size() ? kTypeNames[i] : "other";
}

std::optional<EventType> ParseEventType(std::string_view name) {
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

std::string EncodeEvent(const Event& e) {
  std::string out;
  out.reserve(64 + e.event_id.size() + e.user_id.size() + e.item_id.size() +
              e.properties.size());
  out.push_back(static_cast<char>(kFormatVersion));
  out.push_back(static_cast<char>(e.type));
  PutVarint(out, ZigZag(e.timestamp_ms));
  PutVarint(out, ZigZag(e.collector_ms));
  PutString(out, e.event_id);
  PutString(out, e.tenant);
  PutString(out, e.user_id);
  PutString(out, e.item_id);
  PutString(out, e.session_id);
  PutString(out, e.properties);
  return out;
}

common::Result<Event> DecodeEvent(std::string_view bytes) {
  if (bytes.size() < 2 || static_cast<uint8_t>(bytes[0]) != kFormatVersion) {
    return common::Status::Internal("event record has an unknown format version");
  }
  Event e;
  auto type = static_cast<uint8_t>(bytes[1]);
  if (type > static_cast<uint8_t>(EventType::kOther)) {
    return common::Status::Internal("event record has an unknown type");
  }
  e.type = static_cast<EventType>(type);
  Reader r{bytes.substr(2)};
  e.timestamp_ms = UnZigZag(r.Varint());
  e.collector_ms = UnZigZag(r.Varint());
  e.event_id = r.String();
  e.tenant = r.String();
  e.user_id = r.String();
  e.item_id = r.String();
  e.session_id = r.String();
  e.properties = r.String();
  if (!r.ok) return common::Status::Internal("event record is truncated");
  return e;
}

}  // namespace streamrec::events
