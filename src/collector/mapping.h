// Building blocks shared by the decoders, exposed for tests: URL item patterns, base64,
// timestamps, tenant checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/decode.h"

namespace streamrec::collector {

//! A compiled MappingOptions::item_url_pattern.
class UrlPattern {
 public:
  //! A pattern without "{item}" compiles but never matches.
  explicit UrlPattern(std::string_view pattern);

  //! The percent-decoded item of `url` (absolute URL, "//host/path" or a bare path): the
  //! leftmost place where the pattern's segments occur consecutively in the path, with any
  //! segments before (e.g. a locale "/en") or after. nullopt when there is none.
  std::optional<std::string> Match(std::string_view url) const;

 private:
  struct Segment {
    bool is_item = false;
    std::string literal;  //!< whole segment, or the text before "{item}"
    std::string suffix;   //!< text after "{item}"
  };
  std::vector<Segment> segments_;
  size_t item_index_ = 0;
  bool valid_ = false;
};

//! Decodes standard or url-safe base64, padded or not. False on any invalid input.
bool DecodeBase64(std::string_view in, std::string* out);

//! Lenient percent-decoding for URL paths: malformed escapes are kept as they are.
std::string PercentDecode(std::string_view in);

//! A non-negative decimal integer with nothing around it, else nullopt.
std::optional<int64_t> ParseMillis(std::string_view text);

//! True when `tenant` passes options.allowed_tenants.
bool TenantAllowed(const MappingOptions& options, std::string_view tenant);

//! `payload` cut to kMaxBadRowPayload bytes.
std::string TruncatePayload(std::string_view payload);

}  // namespace streamrec::collector
