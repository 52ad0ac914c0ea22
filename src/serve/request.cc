#include "serve/request.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>

namespace streamrec::serve {

using common::Status;

std::optional<std::string> Target::Param(std::string_view key) const {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return std::nullopt;
}

common::Result<Target> ParseTarget(std::string_view target) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return Status::Invalid("invalid_target", "malformed request target", "target");
  Target t;
  t.path = std::string(parsed->path());
  for (auto p : parsed->params()) t.params.emplace_back(p.key, p.value);
  for (auto s : parsed->segments()) t.segments.emplace_back(s);
  return t;
}

common::Result<size_t> ParseCount(const Target& t, std::string_view name, size_t default_value,
                                  size_t min, size_t max) {
  auto raw = t.Param(name);
  if (!raw) return default_value;
  size_t n = 0;
  auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), n);
  if (ec != std::errc() || ptr != raw->data() + raw->size() || n < min || n > max) {
    return Status::Invalid("invalid_parameter",
                           std::string(name) + " must be an integer from " + std::to_string(min) +
                               " to " + std::to_string(max),
                           std::string(name));
  }
  return n;
}

bool ParseFlag(const Target& t, std::string_view name) {
  auto raw = t.Param(name);
  return raw && (*raw == "1" || *raw == "true" || *raw == "yes");
}

}  // namespace streamrec::serve
