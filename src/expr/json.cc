#include "expr/json.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>

#include "common/json_text.h"

namespace streamrec::expr {

simdjson::simdjson_result<simdjson::dom::element> ParsePadded(simdjson::dom::parser& parser,
                                                              std::string& padded,
                                                              std::string_view json,
                                                              size_t readable) {
  const char* data = json.data();
  if (readable < json.size() + simdjson::SIMDJSON_PADDING) {
    padded.reserve(json.size() + simdjson::SIMDJSON_PADDING);  // before assign: one copy on growth
    padded.assign(json);
    data = padded.data();
  }
  return parser.parse(data, json.size(), /*realloc_if_needed=*/false);
}

common::Result<Value> ParseJson(std::string_view json) {
  // One parser and one padded copy per thread, both reused across events: a fresh
  // padded_string would allocate each time.
  thread_local simdjson::dom::parser parser;
  thread_local std::string padded;
  simdjson::dom::element root;
  auto error = ParsePadded(parser, padded, json, json.size()).get(root);
  if (error) {
    return common::Status::Invalid("invalid_json",
                                   std::string("invalid JSON: ") + simdjson::error_message(error));
  }
  return ValueFromJson(root);
}

Value ValueFromJson(simdjson::dom::element e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::NULL_VALUE:
      return Value();
    case T::BOOL:
      return Value(e.get_bool().value_unsafe());
    case T::INT64:
      return Value(e.get_int64().value_unsafe());
    case T::UINT64:
      return Value(static_cast<double>(e.get_uint64().value_unsafe()));
    case T::DOUBLE:
      return Value(e.get_double().value_unsafe());
    case T::STRING:
      return Value(std::string_view(e.get_string().value_unsafe()));
    case T::ARRAY: {
      List list;
      simdjson::dom::array arr = e.get_array().value_unsafe();
      list.reserve(arr.size());
      for (simdjson::dom::element item : arr) list.push_back(ValueFromJson(item));
      return Value(std::move(list));
    }
    case T::OBJECT: {
      Map map;
      simdjson::dom::object obj = e.get_object().value_unsafe();
      map.reserve(obj.size());
      for (auto field : obj) {
        map.push_back({std::string(field.key), ValueFromJson(field.value)});
      }
      return Value(std::move(map));
    }
  }
  return Value();
}

Value ValueFromJson(const boost::json::value& j) {
  switch (j.kind()) {
    case boost::json::kind::null:
      return Value();
    case boost::json::kind::bool_:
      return Value(j.get_bool());
    case boost::json::kind::int64:
      return Value(static_cast<int64_t>(j.get_int64()));
    case boost::json::kind::uint64: {
      uint64_t u = j.get_uint64();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case boost::json::kind::double_:
      return Value(j.get_double());
    case boost::json::kind::string:
      return Value(std::string_view(j.get_string()));
    case boost::json::kind::array: {
      List list;
      list.reserve(j.get_array().size());
      for (const auto& item : j.get_array()) list.push_back(ValueFromJson(item));
      return Value(std::move(list));
    }
    case boost::json::kind::object: {
      Map map;
      map.reserve(j.get_object().size());
      for (const auto& kv : j.get_object()) {
        map.push_back({std::string(kv.key()), ValueFromJson(kv.value())});
      }
      return Value(std::move(map));
    }
  }
  return Value();
}

namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  common::AppendJsonEscaped(out, s);
  out += '"';
}

void AppendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  std::string_view text(buf, end - buf);
  out += text;
  // Keep doubles recognisable as doubles: 2.0 prints "2.0", not "2".
  if (text.find_first_of(".eEn") == std::string_view::npos) out += ".0";
}

void AppendJson(std::string& out, const Value& v) {
  switch (v.kind()) {
    case Kind::kNull:
      out += "null";
      break;
    case Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Kind::kInt:
      out += std::to_string(v.as_int());
      break;
    case Kind::kDouble:
      AppendDouble(out, v.as_double());
      break;
    case Kind::kTime:
      out += std::to_string(v.as_time().ms);
      break;
    case Kind::kString:
      AppendJsonString(out, v.as_string());
      break;
    case Kind::kList: {
      out += '[';
      bool first = true;
      for (const Value& item : v.as_list()) {
        if (!first) out += ',';
        first = false;
        AppendJson(out, item);
      }
      out += ']';
      break;
    }
    case Kind::kMap: {
      out += '{';
      bool first = true;
      for (const MapEntry& e : v.as_map()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, e.key);
        out += ':';
        AppendJson(out, e.value);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

std::string ToJson(const Value& value) {
  std::string out;
  AppendJson(out, value);
  return out;
}

boost::json::value ToBoostJson(const Value& v) {
  switch (v.kind()) {
    case Kind::kNull:
      return nullptr;
    case Kind::kBool:
      return v.as_bool();
    case Kind::kInt:
      return v.as_int();
    case Kind::kDouble:
      if (!std::isfinite(v.as_double())) return nullptr;
      return v.as_double();
    case Kind::kTime:
      return v.as_time().ms;
    case Kind::kString:
      return boost::json::string(v.as_string());
    case Kind::kList: {
      boost::json::array arr;
      arr.reserve(v.as_list().size());
      for (const Value& item : v.as_list()) arr.push_back(ToBoostJson(item));
      return arr;
    }
    case Kind::kMap: {
      boost::json::object obj;
      for (const MapEntry& e : v.as_map()) obj[e.key] = ToBoostJson(e.value);
      return obj;
    }
  }
  return nullptr;
}

}  // namespace streamrec::expr
