#include "events/event.h"

#include <array>

#include "common/byte_codec.h"

namespace streamrec::events {

using common::PutSigned;
using common::PutString;

namespace {

// Version 2 appended `raw`; version 1 records (without it) are still read.
constexpr uint8_t kFormatVersion = 2;
constexpr uint8_t kFormatVersionWithoutRaw = 1;

constexpr std::array<std::string_view, 7> kTypeNames = {
    "view", "add_to_cart", "purchase", "remove_from_cart", "other", "impression", "click"};
static_assert(kTypeNames.size() == static_cast<size_t>(kLastEventType) + 1);

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
              e.properties.size() + e.raw.size());
  // Without raw fields the record is version 1: older binaries can still replay such a log.
  const bool with_raw = !e.raw.empty();
  out.push_back(static_cast<char>(with_raw ? kFormatVersion : kFormatVersionWithoutRaw));
  out.push_back(static_cast<char>(e.type));
  PutSigned(out, e.timestamp_ms);
  PutSigned(out, e.collector_ms);
  PutString(out, e.event_id);
  PutString(out, e.tenant);
  PutString(out, e.user_id);
  PutString(out, e.item_id);
  PutString(out, e.session_id);
  PutString(out, e.properties);
  if (with_raw) PutString(out, e.raw);
  return out;
}

common::Result<Event> DecodeEvent(std::string_view bytes) {
  const auto version = bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  if (bytes.size() < 2 || (version != kFormatVersion && version != kFormatVersionWithoutRaw)) {
    return common::Status::Internal("event record has an unknown format version");
  }
  Event e;
  auto type = static_cast<uint8_t>(bytes[1]);
  if (type > static_cast<uint8_t>(kLastEventType)) {
    return common::Status::Internal("event record has an unknown type");
  }
  e.type = static_cast<EventType>(type);
  common::ByteReader r(bytes.substr(2));
  e.timestamp_ms = r.Signed();
  e.collector_ms = r.Signed();
  e.event_id = r.String();
  e.tenant = r.String();
  e.user_id = r.String();
  e.item_id = r.String();
  e.session_id = r.String();
  e.properties = r.String();
  if (version >= kFormatVersion) {
    std::string_view raw = r.StringView();
    e.raw.reserve(raw.size() + kRawReadAhead);
    e.raw.assign(raw);
  }
  if (!r.ok()) return common::Status::Internal("event record is truncated");
  return e;
}

}  // namespace streamrec::events
