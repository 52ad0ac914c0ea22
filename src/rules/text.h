// Internal: rule config text (JSON or YAML) to a JSON value, shared by RuleSet and RuleBook.
#pragma once

#include <boost/json/value.hpp>
#include <string_view>

#include "common/status.h"

namespace streamrec::rules::internal {

//! YAML to JSON: quoted scalars stay strings, plain ones become bools, numbers or null
//! when they read as such. Errors name the YAML line.
common::Result<boost::json::value> ParseYamlAsJson(std::string_view yaml);
common::Result<boost::json::value> ParseJsonText(std::string_view text);

}  // namespace streamrec::rules::internal
