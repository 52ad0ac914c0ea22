// simdjson helpers private to the collector decoders.
#pragma once

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <optional>
#include <string>

namespace streamrec::collector {

//! An id given as a JSON string or number, as text (numbers in decimal); nullopt otherwise.
inline std::optional<std::string> IdText(simdjson::dom::element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::STRING:
      return std::string(value.get_string().value_unsafe());
    case simdjson::dom::element_type::INT64:
      return std::to_string(value.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return std::to_string(value.get_uint64().value_unsafe());
    case simdjson::dom::element_type::DOUBLE: {
      double d = value.get_double().value_unsafe();
      if (!std::isfinite(d)) return std::nullopt;
      // 12.0 (e.g. from a JS number) is the id "12", not "12.0".
      if (d == std::trunc(d) && std::fabs(d) < 9e15) {
        return std::to_string(static_cast<int64_t>(d));
      }
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
      return std::string(buf, end);
    }
    default:
      return std::nullopt;
  }
}

//! Message for a simdjson error code.
inline std::string JsonError(simdjson::error_code error) { return simdjson::error_message(error); }

}  // namespace streamrec::collector
