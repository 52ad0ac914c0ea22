#include "scenario/input.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <simdjson.h>

#include "common/byte_scan.h"
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

// The collector writes tracker fields as a minified JSON object of strings without escapes
// (`{"schema":"iglu:…","e":"pv","url":"https://…"}`). Such text is read here in one pass, sixteen
// bytes at a time; anything else (escapes, non-ASCII bytes, other value types, spaces) goes to
// simdjson, which then also validates it. Both read the same fields from text they both accept.
class FlatStringObjectScanner {
 public:
  explicit FlatStringObjectScanner(std::string_view text) : text_(text) {}

  //! Calls on_field(key, value) per field in order; false (perhaps after some calls) when the
  //! text is not such an object.
  template <typename F>
  bool Scan(F&& on_field) {
    if (!Take('{')) return false;
    if (Take('}')) return AtEnd();
    do {
      std::string_view key, value;
      if (!String(&key) || !Take(':') || !String(&value)) return false;
      on_field(key, value);
    } while (Take(','));
    return Take('}') && AtEnd();
  }

 private:
  bool AtEnd() const { return pos_ == text_.size(); }
  bool Take(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // A string of printable ASCII bytes without escapes.
  bool String(std::string_view* out) {
    if (!Take('"')) return false;
    const size_t begin = pos_;
    const size_t end = FindSpecial(begin);
    if (end == text_.size() || text_[end] != '"') return false;
    *out = text_.substr(begin, end - begin);
    pos_ = end + 1;
    return true;
  }
  // The first byte from `from` that is a quote, a backslash, a control byte or not ASCII;
  // text_.size() when none.
  size_t FindSpecial(size_t from) const {
    // A byte is below 0x20 or above 0x7f exactly when it minus 0x20 (wrapping) is 0x60 or more.
    return common::FindFirstByte(
        text_, from,
        [](common::Bytes16 b) { return (b - 0x20 >= 0x60) | (b == '"') | (b == '\\'); },
        [](unsigned char b) { return b < 0x20 || b >= 0x80 || b == '"' || b == '\\'; });
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Type InputType() {
  std::vector<std::pair<std::string, Type>> fields;
  for (const auto& field : kFields) fields.emplace_back(field.name, field.type());
  return Type::Record(std::move(fields));
}

struct RawFieldsParser::Impl {
  simdjson::dom::parser parser;
  std::string padded;           // a copy of raw text without room for simdjson's read-ahead
  // The object's fields in order (views into the event's text or into the parser), each made
  // into a Value when first read: a field read by several steps is made once per event.
  struct Field {
    std::string_view key;
    std::string_view text;        // the string, when scanned (FlatStringObjectScanner)
    simdjson::dom::element json;  // the value, when simdjson parsed the object
    bool made = false;            // values[i] holds this event's value
  };
  std::vector<Field> fields;
  bool scanned = false;
  // By field position, the values made. Kept from one event to the next, so that a field's
  // string is copied into the buffer it had last time when nothing else holds that value.
  std::vector<Value> values;

  //! The first field named `key` (as a lookup in the whole map finds it), or fields.size().
  size_t Find(std::string_view key) const {
    for (size_t i = 0; i < fields.size(); ++i) {
      const std::string_view name = fields[i].key;
      // Length and first byte inline: most keys differ there, and a call to memcmp per key
      // cost more than the rest of the lookup.
      if (name.size() == key.size() && (key.empty() || name[0] == key[0]) && name == key) {
        return i;
      }
    }
    return fields.size();
  }
  const Value& MakeValue(size_t i) {
    Field& field = fields[i];
    if (!field.made) {
      if (scanned) {
        values[i].AssignString(field.text);
      } else {
        values[i] = expr::ValueFromJson(field.json);
      }
      field.made = true;
    }
    return values[i];
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
  p.scanned = FlatStringObjectScanner(text).Scan(
      [&p](std::string_view key, std::string_view value) { p.fields.push_back({key, value}); });
  if (!p.scanned) {
    p.fields.clear();
    // DecodeEvent leaves simdjson's read-ahead room after logged raw text: parsed where it lies.
    static_assert(simdjson::SIMDJSON_PADDING <= events::kRawReadAhead);
    simdjson::dom::element root;
    simdjson::dom::object object;
    if (expr::ParsePadded(p.parser, p.padded, text, text.capacity()).get(root) ||
        root.get_object().get(object)) {
      return false;
    }
    for (auto field : object) p.fields.push_back({field.key, {}, field.value});
  }
  if (p.values.size() < p.fields.size()) p.values.resize(p.fields.size());
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
  if (!parsed_raw_) {
    parsed_raw_.emplace();
    if (RawParsed()) {
      RawFieldsParser::Impl& p = *parser_.impl_;
      expr::Map map;
      map.reserve(p.fields.size());
      for (size_t i = 0; i < p.fields.size(); ++i) {
        map.push_back({std::string(p.fields[i].key), p.MakeValue(i)});
      }
      *parsed_raw_ = Value(std::move(map));
    }
  }
  return *parsed_raw_;
}

const Value* EventInput::Member(size_t index, std::string_view key, Value&) const {
  static const Value kNull;
  // Once the whole map is made (or given), members are read from it; for a null raw the
  // caller's null handling applies.
  if (!ReadsRawText(index) || !RawParsed()) return nullptr;
  // The first field of that name, as a lookup in the whole map would find it.
  RawFieldsParser::Impl& p = *parser_.impl_;
  const size_t field = p.Find(key);
  return field == p.fields.size() ? &kNull : &p.MakeValue(field);
}

expr::StringPeek EventInput::PeekMember(size_t index, std::string_view key) const {
  if (!ReadsRawText(index) || !RawParsed()) return {};
  const RawFieldsParser::Impl& p = *parser_.impl_;
  const size_t i = p.Find(key);
  using expr::StringPeek;
  if (i == p.fields.size()) return {StringPeek::kNull};
  if (p.scanned) return {StringPeek::kString, p.fields[i].text};
  const simdjson::dom::element& json = p.fields[i].json;
  if (json.is_null()) return {StringPeek::kNull};
  std::string_view text;
  if (json.get_string().get(text) == simdjson::SUCCESS) return {StringPeek::kString, text};
  return {};
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
