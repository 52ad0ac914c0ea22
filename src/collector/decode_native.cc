// Native JSON events (POST /v1/events) -> canonical events.
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "collector/decode.h"
#include "collector/json_util.h"
#include "collector/mapping.h"

namespace streamrec::collector {

namespace {

using common::Code;
using common::Result;
using common::Status;
using events::BadRow;
using events::DecodeOutput;
using events::Event;
using events::EventType;

// The value of `key`, or nullopt when absent or null.
std::optional<simdjson::dom::element> Field(simdjson::dom::object object, std::string_view key) {
  simdjson::dom::element value;
  if (object[key].get(value) || value.is_null()) return std::nullopt;
  return value;
}

std::optional<int64_t> NonNegativeMillis(simdjson::dom::element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::INT64: {
      int64_t v = value.get_int64().value_unsafe();
      return v >= 0 ? std::optional(v) : std::nullopt;
    }
    case simdjson::dom::element_type::UINT64: {
      uint64_t v = value.get_uint64().value_unsafe();
      return v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 ? std::optional(static_cast<int64_t>(v))
                 : std::nullopt;
    }
    case simdjson::dom::element_type::DOUBLE: {
      // e.g. 1.7e12, or fractional ms from performance.now()-based clocks.
      double v = value.get_double().value_unsafe();
      return std::isfinite(v) && v >= 0 && v < 9.2e18 ? std::optional(static_cast<int64_t>(v))
                                                      : std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

class NativeMapper {
 public:
  explicit NativeMapper(const MappingOptions& options) : options_(options) {}

  //! Fills *event, or returns why the event is rejected (payload left to the caller).
  std::optional<BadRow> Map(simdjson::dom::element element, int64_t now_ms, Event* event);

 private:
  BadRow Reject(std::string_view reason, std::string_view field, std::string message) const {
    return BadRow{std::string(reason), std::string(field), std::move(message), {}, tenant_};
  }
  // A required (or optional) id field as text into *out; strings and integers are ids.
  std::optional<BadRow> Id(simdjson::dom::object object, std::string_view key, bool required,
                           std::string* out) const;

  const MappingOptions& options_;
  std::string tenant_;
};

std::optional<BadRow> NativeMapper::Id(simdjson::dom::object object, std::string_view key,
                                       bool required, std::string* out) const {
  std::optional<simdjson::dom::element> value = Field(object, key);
  if (value) {
    std::optional<std::string> text = IdText(*value);
    if (!text) {
      return Reject("invalid_field", key, std::string(key) + " must be a string or number");
    }
    *out = std::move(*text);
  }
  if (required && out->empty()) {
    return Reject("missing_field", key, std::string(key) + " is required");
  }
  return std::nullopt;
}

std::optional<BadRow> NativeMapper::Map(simdjson::dom::element element, int64_t now_ms,
                                        Event* event) {
  tenant_.clear();
  simdjson::dom::object object;
  if (element.get_object().get(object)) {
    return Reject("invalid_event", "", "event must be a JSON object");
  }

  std::string_view tenant;
  if (auto value = Field(object, "tenant"); value && value->get_string().get(tenant)) {
    return Reject("invalid_field", "tenant", "tenant must be a string");
  }
  tenant_ = tenant.empty() ? options_.default_tenant : std::string(tenant);
  if (auto bad = Id(object, "event_id", /*required=*/true, &event->event_id)) return bad;
  if (!TenantAllowed(options_, tenant_)) {
    return Reject("tenant_not_allowed", "tenant",
                  "tenant '" + tenant_.substr(0, 64) + "' is not allowed");
  }
  if (auto bad = Id(object, "user_id", /*required=*/true, &event->user_id)) return bad;

  std::optional<simdjson::dom::element> type_value = Field(object, "type");
  if (!type_value) return Reject("missing_field", "type", "type is required");
  std::string_view type_name;
  std::optional<EventType> type;
  if (!type_value->get_string().get(type_name)) type = events::ParseEventType(type_name);
  if (!type) {
    return Reject("invalid_field", "type",
                  "type must be one of view, add_to_cart, purchase, remove_from_cart, other");
  }
  event->type = *type;

  bool needs_item = *type == EventType::kView || *type == EventType::kAddToCart ||
                    *type == EventType::kRemoveFromCart;
  if (auto bad = Id(object, "item_id", needs_item, &event->item_id)) return bad;

  event->timestamp_ms = now_ms;
  if (auto value = Field(object, "timestamp")) {
    std::optional<int64_t> millis = NonNegativeMillis(*value);
    if (!millis) {
      return Reject("invalid_field", "timestamp", "timestamp must be a number of milliseconds");
    }
    event->timestamp_ms = *millis;
  }

  if (auto bad = Id(object, "session_id", /*required=*/false, &event->session_id)) return bad;

  if (auto value = Field(object, "properties")) {
    if (!value->is_object()) {
      return Reject("invalid_field", "properties", "properties must be a JSON object");
    }
    event->properties = simdjson::minify(*value);
  }
  event->tenant = tenant_;
  event->collector_ms = now_ms;
  return std::nullopt;
}

}  // namespace

Result<DecodeOutput> DecodeNativeJson(std::string_view body, int64_t now_ms,
                                      const MappingOptions& options) {
  simdjson::padded_string padded(body);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(padded).get(root); error) {
    return Status::Invalid("invalid_json", "body is not valid JSON: " + JsonError(error), "body");
  }

  DecodeOutput out;
  NativeMapper mapper(options);
  auto add = [&](simdjson::dom::element element) {
    Event event;
    if (std::optional<BadRow> bad = mapper.Map(element, now_ms, &event)) {
      bad->payload = TruncatePayload(simdjson::minify(element));
      out.bad_rows.push_back(std::move(*bad));
    } else {
      out.events.push_back(std::move(event));
    }
  };

  simdjson::dom::array array;
  if (root.is_object()) {
    add(root);
  } else if (!root.get_array().get(array)) {
    if (array.size() > options.max_batch_events) {
      return Status::Make(Code::kTooLarge, "batch_too_large",
                          std::to_string(array.size()) + " events in one request, limit is " +
                              std::to_string(options.max_batch_events),
                          "body");
    }
    out.events.reserve(array.size());
    for (simdjson::dom::element element : array) add(element);
  } else {
    return Status::Invalid("invalid_payload", "body must be an event object or an array of them",
                           "body");
  }
  return out;
}

}  // namespace streamrec::collector
