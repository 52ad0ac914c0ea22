#include "scenario/input.h"

#include <string>

#include "expr/json.h"

namespace streamrec::scenario {

using expr::Type;
using expr::Value;

Type InputType() {
  return Type::Record({{"event_id", Type::String()},
                       {"tenant", Type::String()},
                       {"user_id", Type::String()},
                       {"item_id", Type::String()},
                       {"type", Type::String()},
                       {"timestamp", Type::Time()},
                       {"collector_time", Type::Time()},
                       {"session_id", Type::String()},
                       {"properties", Type::MapOf(Type::Any())},
                       {"raw", Type::MapOf(Type::Any())}});
}

Value InputValue(const events::Event& event, const Value& raw, bool parse_properties) {
  Value properties;
  if (parse_properties && !event.properties.empty()) {
    auto parsed = expr::ParseJson(event.properties);
    if (parsed.ok() && parsed->is_map()) properties = std::move(parsed).value();
  }
  // Empty ids read as null so that `#input.item_id ?: …` falls back as it reads.
  auto text = [](const std::string& s) { return s.empty() ? Value() : Value(s); };
  expr::Map map;
  map.reserve(10);
  map.push_back({"event_id", text(event.event_id)});
  map.push_back({"tenant", text(event.tenant)});
  map.push_back({"user_id", text(event.user_id)});
  map.push_back({"item_id", text(event.item_id)});
  map.push_back({"type", Value(events::EventTypeName(event.type))});
  map.push_back({"timestamp", Value(expr::TimeMs{event.timestamp_ms})});
  map.push_back({"collector_time", Value(expr::TimeMs{event.collector_ms})});
  map.push_back({"session_id", text(event.session_id)});
  map.push_back({"properties", std::move(properties)});
  map.push_back({"raw", raw.is_map() ? raw : Value()});
  return Value(std::move(map));
}

}  // namespace streamrec::scenario
