#include "scenario/input.h"

#include <optional>
#include <string>
#include <vector>

#include <simdjson.h>

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

struct RawFieldsParser::Impl {
  simdjson::dom::parser parser;
  std::string padded;           // a copy of raw text without room for simdjson's read-ahead
  simdjson::dom::element root;  // an object, once RawParsed() says so
  // The object's fields in order (views into the parser), each made into a Value when first
  // read: a field read by several steps is made once per event.
  struct Field {
    std::string_view key;
    simdjson::dom::element json;
    std::optional<Value> value;
  };
  std::vector<Field> fields;
  //! The first field named `key` (as a lookup in the whole map finds it), or nullptr.
  Field* Find(std::string_view key) {
    for (Field& field : fields) {
      // Length and first byte inline: most keys differ there, and a call to memcmp per key
      // cost more than the rest of the lookup.
      if (field.key.size() == key.size() && (key.empty() || field.key[0] == key[0]) &&
          field.key == key) {
        return &field;
      }
    }
    return nullptr;
  }
};

RawFieldsParser::RawFieldsParser() : impl_(std::make_unique<Impl>()) {}
RawFieldsParser::~RawFieldsParser() = default;

bool EventInput::RawParsed() const {
  if (raw_parsed_) return *raw_parsed_;
  raw_parsed_ = false;
  RawFieldsParser::Impl& p = *parser_.impl_;
  p.fields.clear();
  const std::string& text = event_.raw;
  if (text.empty()) return false;
  // DecodeEvent leaves simdjson's read-ahead room after logged raw text: parsed where it lies.
  static_assert(simdjson::SIMDJSON_PADDING <= events::kRawReadAhead);
  simdjson::dom::object object;
  if (expr::ParsePadded(p.parser, p.padded, text, text.capacity()).get(p.root) ||
      p.root.get_object().get(object)) {
    return false;
  }
  for (auto field : object) p.fields.push_back({field.key, field.value, std::nullopt});
  raw_parsed_ = true;
  return true;
}

EventInput::~EventInput() {
  if (raw_parsed_) parser_.impl_->fields.clear();
}

const Value& EventInput::Raw() const {
  static const Value kNull;
  if (raw_) return raw_->is_map() ? *raw_ : kNull;
  if (!parse_raw_) return kNull;
  if (!parsed_raw_) parsed_raw_ = RawParsed() ? expr::ValueFromJson(parser_.impl_->root) : Value();
  return *parsed_raw_;
}

const Value* EventInput::Member(size_t index, std::string_view key, Value&) const {
  static const Value kNull;
  // Once the whole map is made (or given), members are read from it; for a null raw the
  // caller's null handling applies.
  if (!ReadsRawText(index) || !RawParsed()) return nullptr;
  // The first field of that name, as a lookup in the whole map would find it.
  RawFieldsParser::Impl::Field* field = parser_.impl_->Find(key);
  if (!field) return &kNull;
  if (!field->value) field->value = expr::ValueFromJson(field->json);
  return &*field->value;
}

bool EventInput::FieldIsNull(size_t index) const {
  return ReadsRawText(index) ? !RawParsed() : NativeRecord::FieldIsNull(index);
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
