// JSON <-> Value. Event properties arrive as JSON objects; expression results leave as JSON.
#pragma once

#include <simdjson.h>

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "expr/value.h"

namespace streamrec::expr {

//! Parses JSON text. Integers beyond int64 become doubles. Errors say where.
common::Result<Value> ParseJson(std::string_view json);
//! Parses `json` into `parser`'s document (valid until its next parse), without allocating once
//! the buffers have grown: in place when `readable` (the bytes readable from json.data(), e.g. a
//! string's capacity) leaves simdjson's padding after the text, else from a copy in `padded`.
simdjson::simdjson_result<simdjson::dom::element> ParsePadded(simdjson::dom::parser& parser,
                                                              std::string& padded,
                                                              std::string_view json,
                                                              size_t readable);
Value ValueFromJson(simdjson::dom::element element);
Value ValueFromJson(const boost::json::value& json);

//! Compact JSON. Time is written as epoch milliseconds (what events carry); non-finite
//! doubles as null (JSON has no NaN).
std::string ToJson(const Value& value);
boost::json::value ToBoostJson(const Value& value);

}  // namespace streamrec::expr
