// Templates for webhook URLs, headers and bodies: {{user_id}}, {{tenant}}, {{items_json}},
// {{items_scored_json}}, {{model}}, {{generated_at}}, {{generated_at_ms}}, {{env.NAME}}.
// Secrets ({{env.NAME}}) are resolved once, when the template is parsed, and remembered in a
// Secrets set so that every log line and dead letter can be masked.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sinks/sink.h"

namespace streamrec::sinks {

//! Secret values to hide; Mask() replaces each (and its JSON/URL-escaped forms) by "***".
class Secrets {
 public:
  void Add(std::string_view value);
  std::string Mask(std::string_view text) const;
  bool empty() const { return values_.empty(); }

 private:
  std::vector<std::string> values_;  // longest first, so overlapping secrets mask whole
};

//! JSON string literal with quotes: "a\"b".
std::string JsonQuote(std::string_view s);
//! Percent-encodes all but RFC 3986 unreserved characters.
std::string UrlEncode(std::string_view s);
//! `["id1","id2"]`
std::string ItemsJson(const Update& update);
//! `[{"id":"id1","score":0.5},...]`
std::string ItemsScoredJson(const Update& update);
//! RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.123Z
std::string Rfc3339Ms(int64_t ms);

class Template {
 public:
  enum class Kind {
    //! Context-aware: inside a JSON string literal values are escaped (items_json becomes
    //! an escaped JSON text); outside, strings are quoted and items_json is a raw array.
    kJsonBody,
    kUrl,     //!< values percent-encoded
    kHeader,  //!< CR, LF and NUL dropped (no header injection)
  };

  //! Validates placeholders and resolves {{env.NAME}} via `env` (adding the value to
  //! `secrets`). `field` names the config field in errors.
  static common::Result<Template> Parse(std::string_view text, Kind kind, const EnvLookup& env,
                                        Secrets& secrets, std::string_view field);

  std::string Render(const Update& update) const;
  //! True when the template refers to per-update data (not only literals and secrets).
  bool dynamic() const;

 private:
  enum class Var {
    kLiteral,
    kUserId,
    kTenant,
    kItemsJson,
    kItemsScoredJson,
    kModel,
    kGeneratedAt,
    kGeneratedAtMs
  };
  struct Segment {
    Var var = Var::kLiteral;
    std::string text;        // kLiteral
    bool in_string = false;  // kJsonBody: inside a JSON string literal
  };
  std::string Value(const Segment& seg, const Update& update) const;

  Kind kind_ = Kind::kJsonBody;
  std::vector<Segment> segments_;
};

}  // namespace streamrec::sinks
