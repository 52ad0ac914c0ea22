// Request helpers shared by the API handlers: the parsed target and common parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace streamrec::serve {

//! A request target split into path, decoded segments and decoded query parameters.
struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<std::string> segments;

  std::optional<std::string> Param(std::string_view key) const;
};

common::Result<Target> ParseTarget(std::string_view target);

//! Integer parameter `name`: `default_value` when absent, else it must be in [min, max];
//! errors name the parameter.
common::Result<size_t> ParseCount(const Target& t, std::string_view name, size_t default_value,
                                  size_t min, size_t max);

//! Boolean parameter: true for "1", "true", "yes".
bool ParseFlag(const Target& t, std::string_view name);

}  // namespace streamrec::serve
