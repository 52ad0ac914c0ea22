// ISO 8601 <-> epoch milliseconds, UTC, without the C library's locale and time zone state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace streamrec::expr {

//! Accepts `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff…]]` (`T` or a space), then `Z`, `±HH:MM`,
//! `±HHMM` or nothing (UTC). nullopt for anything else, including out-of-range fields.
std::optional<int64_t> ParseIsoTime(std::string_view text);

//! `2024-03-01T12:00:00.250Z` (milliseconds always present).
std::string FormatIsoTime(int64_t ms);

//! strftime-style pattern in UTC (%Y %m %d %H %M %S %j %a %b …); `%L` adds milliseconds.
std::string FormatTime(int64_t ms, std::string_view pattern);

}  // namespace streamrec::expr
