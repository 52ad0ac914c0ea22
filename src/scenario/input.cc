#include "scenario/input.h"

#include <string>

#include "expr/json.h"

namespace streamrec::scenario {

using expr::Type;
using expr::Value;

namespace {

// The fields of InputType(), in order; EventInput::Field(i) makes field i.
constexpr struct {
  const char* name;
  Type (*type)();
} kFields[] = {{"event_id", Type::String},
               {"tenant", Type::String},
               {"user_id", Type::String},
               {"item_id", Type::String},
               {"type", Type::String},
               {"timestamp", Type::Time},
               {"collector_time", Type::Time},
               {"session_id", Type::String},
               {"properties", [] { return Type::MapOf(Type::Any()); }},
               {"raw", [] { return Type::MapOf(Type::Any()); }}};
enum Field {
  kEventId,
  kTenant,
  kUserId,
  kItemId,
  kType,
  kTimestamp,
  kCollectorTime,
  kSessionId,
  kProperties,
  kRaw,
  kFieldCount
};
static_assert(std::size(kFields) == kFieldCount);
static_assert(kProperties == kInputPropertiesField && kRaw == kInputRawField);

// A JSON object text as a map value; anything else (empty, invalid, not an object) is null.
Value ObjectOrNull(const std::string& json) {
  if (json.empty()) return Value();
  auto parsed = expr::ParseJson(json);
  if (!parsed.ok() || !parsed->is_map()) return Value();
  return std::move(parsed).value();
}

}  // namespace

Type InputType() {
  std::vector<std::pair<std::string, Type>> fields;
  for (const auto& field : kFields) fields.emplace_back(field.name, field.type());
  return Type::Record(std::move(fields));
}

const Value& EventInput::Raw() const {
  static const Value kNull;
  if (raw_) return raw_->is_map() ? *raw_ : kNull;
  if (!parse_raw_) return kNull;
  if (!parsed_raw_) parsed_raw_ = ObjectOrNull(event_.raw);
  return *parsed_raw_;
}

const Value& EventInput::Field(size_t index, Value& scratch) const {
  static const Value kNull;
  // Empty ids read as null so that `#input.item_id ?: …` falls back as it reads.
  auto text = [&](std::string_view s) -> const Value& {
    if (s.empty()) return kNull;
    scratch = Value(s);
    return scratch;
  };
  switch (index) {
    case kEventId:
      return text(event_.event_id);
    case kTenant:
      return text(event_.tenant);
    case kUserId:
      return text(event_.user_id);
    case kItemId:
      return text(event_.item_id);
    case kType:
      return text(events::EventTypeName(event_.type));
    case kTimestamp:
      scratch = Value(expr::TimeMs{event_.timestamp_ms});
      return scratch;
    case kCollectorTime:
      scratch = Value(expr::TimeMs{event_.collector_ms});
      return scratch;
    case kSessionId:
      return text(event_.session_id);
    case kProperties:
      if (!parse_properties_) return kNull;
      if (!properties_) properties_ = ObjectOrNull(event_.properties);
      return *properties_;
    case kRaw:
      return Raw();
  }
  return kNull;
}

Value EventInput::ToValue() const {
  expr::Map map;
  map.reserve(kFieldCount);
  for (size_t i = 0; i < kFieldCount; ++i) {
    Value scratch;
    map.push_back({kFields[i].name, Field(i, scratch)});
  }
  return Value(std::move(map));
}

}  // namespace streamrec::scenario
