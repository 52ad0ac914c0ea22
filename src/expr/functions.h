// Built-in functions (private to src/expr): their signatures for the type checker and their
// implementations. Lambda functions (filter, map, any, all) are compiled specially.
#pragma once

#include <re2/re2.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "expr/node.h"

namespace streamrec::expr {

using KindMask = uint32_t;
constexpr KindMask Bit(Kind k) { return 1u << static_cast<int>(k); }
constexpr KindMask kMaskNull = Bit(Kind::kNull);
constexpr KindMask kMaskBool = Bit(Kind::kBool);
constexpr KindMask kMaskString = Bit(Kind::kString);
constexpr KindMask kMaskInt = Bit(Kind::kInt);
constexpr KindMask kMaskNumber = Bit(Kind::kInt) | Bit(Kind::kDouble);
constexpr KindMask kMaskList = Bit(Kind::kList);
constexpr KindMask kMaskMap = Bit(Kind::kMap);
constexpr KindMask kMaskTime = Bit(Kind::kTime);
constexpr KindMask kMaskAny = 0xFF;

//! The mask bit of a static type; 0 for any (which passes every check).
KindMask TypeBit(const Type& type);
//! "string", "int or double", ...
std::string MaskName(KindMask mask);

//! A regex made only of literal ASCII characters and ASCII classes (`[0-4]`, `[.]`, `\.`), each
//! matching exactly one character, optionally anchored by `^` / `$`: e.g. a schema check. It is
//! matched byte by byte, much faster than RE2's general machinery, with the same answers (every
//! atom matches one ASCII byte, so UTF-8 code points and bytes coincide).
class SimplePattern {
 public:
  //! nullopt when `pattern` has anything else (quantifiers, groups, `.`, negated classes, …).
  static std::optional<SimplePattern> Parse(std::string_view pattern);
  //! What RE2::PartialMatch(text, pattern) answers.
  bool Match(std::string_view text) const;

 private:
  bool MatchAt(std::string_view text, size_t at) const;
  std::vector<std::array<uint64_t, 2>> atoms_;  // per position: the ASCII bytes it accepts
  std::string literal_prefix_;                  // the leading atoms that each accept a single byte
  bool anchor_start_ = false, anchor_end_ = false;
};

//! The path of an absolute URL, a protocol-relative one or a bare path; no query or fragment.
std::string_view UrlPath(std::string_view url);
//! The next non-empty `/`-separated segment of `path` from `*at` (advanced past it); false at
//! the end.
bool NextUrlSegment(std::string_view path, size_t* at, std::string_view* segment);

//! A url_match pattern, parsed once: its non-empty segments, each literal, `*` (any one segment)
//! or `{name}` (any one segment, captured); a last `**` matches any rest.
class UrlPattern {
 public:
  explicit UrlPattern(std::string_view pattern);
  //! The `{name}`s in pattern order.
  const std::vector<std::string>& names() const { return names_; }
  //! The position in names() of the first `{name}`, or SIZE_MAX.
  size_t Find(std::string_view name) const;
  //! Whether the path of `url` matches; on_param(position in names(), raw segment) is called
  //! per `{name}`, in order, as the walk goes (so also on a path that then fails to match).
  template <typename F>
  bool Match(std::string_view url, F&& on_param) const {
    const std::string_view path = UrlPath(url);
    size_t at = 0;
    std::string_view segment;
    for (const Part& part : parts_) {
      if (part.kind == Part::kRest) return true;  // only ever last
      if (!NextUrlSegment(path, &at, &segment)) return false;
      if (part.kind == Part::kParam) {
        on_param(part.param, segment);
      } else if (part.kind == Part::kLiteral && part.text != segment) {
        return false;
      }
    }
    return !NextUrlSegment(path, &at, &segment);
  }

 private:
  struct Part {
    enum Kind : uint8_t { kLiteral, kAny, kParam, kRest } kind = kLiteral;
    size_t param = 0;  // kParam: position in names_
    std::string text;  // kLiteral
  };
  std::vector<Part> parts_;
  std::vector<std::string> names_;
};

struct CallSite {
  int pos;
  const RE2* regex;  //!< the precompiled pattern argument, when it was a literal
  const SimplePattern* simple = nullptr;  //!< the same, when it is that simple
  const UrlPattern* url_pattern = nullptr;  //!< url_match's pattern, when it was a literal
};

struct Builtin {
  const char* name;
  const char* signature;  //!< for error messages and docs
  int min_args;
  int max_args;
  KindMask params[3];
  //! A null first argument makes the result null (e.g. lower(null) is null) instead of an
  //! error: this is what lets `url_path(#input.url).starts_with('/p/')` be false, not fail,
  //! on events without a url.
  bool null_propagates;
  bool pure;  //!< false for now_ms(): never folded
  Type (*result)(const std::vector<Type>& args);
  //! args[i] has passed the params[i] mask check.
  Value (*eval)(EvalContext& ctx, const CallSite& site, const Value* const* args, int n);
};

//! `url_match(url, pattern)?.name` without building the map: false when the URL does not match
//! (`out` untouched), else `out` is the decoded segment of param `param` (a position in
//! pattern.names(); null for SIZE_MAX), refilled in the buffer it holds when it can.
bool UrlMatchField(std::string_view url, const UrlPattern& pattern, size_t param, Value& out);

const Builtin* FindBuiltin(std::string_view name);
const std::vector<Builtin>& Builtins();
//! filter, map, any, all: take a list and a lambda `x -> ...`.
bool IsLambdaFunction(std::string_view name);

}  // namespace streamrec::expr
