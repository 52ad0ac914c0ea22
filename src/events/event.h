// The canonical event: what every decoder produces and the log stores.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace streamrec::events {

enum class EventType : uint8_t {
  kView = 0,
  kAddToCart = 1,
  kPurchase = 2,
  kRemoveFromCart = 3,
  kOther = 4,
  kImpression = 5,  //!< a served list was shown (properties carry list_id, items, placement)
  kClick = 6,       //!< an item of a served list was clicked (properties carry list_id)
};
//! The highest EventType value; stored records with a larger type byte are corrupt.
inline constexpr EventType kLastEventType = EventType::kClick;

std::string_view EventTypeName(EventType type);
//! Accepts "view", "add_to_cart", "purchase", "remove_from_cart", "other", "impression",
//! "click".
std::optional<EventType> ParseEventType(std::string_view name);

//! Spare capacity DecodeEvent leaves after Event::raw, so that a JSON parser that reads ahead
//! of the text (simdjson) parses it where it lies instead of copying it per event.
inline constexpr size_t kRawReadAhead = 64;

struct Event {
  std::string event_id;    //!< tracker-assigned id (Snowplow eid); dedup key with tenant
  std::string tenant;      //!< shop / app id (Snowplow aid)
  std::string user_id;     //!< uid if known, else duid
  std::string item_id;     //!< may be empty for events without an item
  EventType type = EventType::kOther;
  int64_t timestamp_ms = 0;  //!< event time (dtm, else stm, else collector time)
  int64_t collector_ms = 0;  //!< when the collector received it
  std::string session_id;    //!< tracker session id (sid) when sent
  std::string properties;    //!< compact JSON object or empty
  //! The tracker's own fields as sent (compact JSON object, plus "schema" for tp2 POSTs) when
  //! the collector keeps them for scenarios (`#input.raw`); else empty. Decoded from the log
  //! with kRawReadAhead bytes of spare capacity after it.
  std::string raw;

  bool operator==(const Event&) const = default;
};

//! Compact binary encoding used in the log (versioned, length-prefixed fields).
std::string EncodeEvent(const Event& event);
common::Result<Event> DecodeEvent(std::string_view bytes);

//! One rejected input with why; written to the bad-rows store.
struct BadRow {
  std::string reason;   //!< machine code: invalid_json, invalid_schema, invalid_base64, ...
  std::string field;    //!< offending field when known
  std::string message;  //!< human-readable
  std::string payload;  //!< the offending input, truncated to a few KB
  std::string tenant;   //!< when known
};

//! Result of decoding one request: accepted events and per-event rejections.
struct DecodeOutput {
  std::vector<Event> events;
  std::vector<BadRow> bad_rows;
};

}  // namespace streamrec::events
