#include "expr/functions.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <unordered_set>

#include "common/byte_scan.h"
#include "common/clock.h"
#include "expr/json.h"
#include "expr/time_util.h"

namespace streamrec::expr {
namespace {

using Args = const Value* const*;

// ---- result types -------------------------------------------------------------------------
Type RBool(const std::vector<Type>&) { return Type::Bool(); }
Type RInt(const std::vector<Type>&) { return Type::Int(); }
Type RDouble(const std::vector<Type>&) { return Type::Double(); }
Type RString(const std::vector<Type>&) { return Type::String(); }
Type RTime(const std::vector<Type>&) { return Type::Time(); }
Type RStringList(const std::vector<Type>&) { return Type::ListOf(Type::String()); }
Type RStringMap(const std::vector<Type>&) { return Type::MapOf(Type::String()); }
Type RFirst(const std::vector<Type>& a) { return a[0]; }
Type RElement(const std::vector<Type>& a) {
  if (a[0].is(Type::Tag::kMap) && a[0].fields()) return Type::Any();
  return a[0].element();
}
Type RSum(const std::vector<Type>& a) {
  Type e = a[0].element();
  return e.is_number() ? e : Type::Any();
}
Type RNumber(const std::vector<Type>& a) { return a[0].is_number() ? a[0] : Type::Any(); }

// ---- helpers ------------------------------------------------------------------------------
std::string_view Str(const Value* v) { return v->as_string(); }

std::string_view Trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

int64_t TimeArg(const Value* v) { return v->is_time() ? v->as_time().ms : v->as_int(); }

// The first of the bytes `Cs` in `s` from `pos` (npos when none), sixteen bytes at a time: URL
// delimiters, searched per event.
template <char... Cs>
size_t FindAnyOf(std::string_view s, size_t pos = 0) {
  const size_t found = common::FindFirstByte(
      s, pos,
      [](common::Bytes16 b) {
        return reinterpret_cast<common::Bytes16>(((b == static_cast<uint8_t>(Cs)) | ...));
      },
      [](unsigned char c) { return ((c == static_cast<unsigned char>(Cs)) || ...); });
  return found < s.size() ? found : std::string_view::npos;
}

std::string PercentDecode(std::string_view s) {
  if (FindAnyOf<'%', '+'>(s) == std::string_view::npos) return std::string(s);  // the usual case
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// PercentDecode(s) into `out`, in the buffer it holds when it can (Value::AssignString).
void AssignPercentDecoded(Value& out, std::string_view s) {
  if (FindAnyOf<'%', '+'>(s) == std::string_view::npos) {
    out.AssignString(s);
  } else {
    out = Value(PercentDecode(s));
  }
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t at = 0;
  for (std::string_view segment; NextUrlSegment(path, &at, &segment);) out.push_back(segment);
  return out;
}

// Which of `a`, `b` orders first; nullopt when they are not comparable.
std::optional<int> Order(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return (a.as_int() > b.as_int()) - (a.as_int() < b.as_int());
    double x = a.as_number(), y = b.as_number();
    return (x > y) - (x < y);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return (c > 0) - (c < 0);
  }
  if (a.is_time() && b.is_time())
    return (a.as_time().ms > b.as_time().ms) - (a.as_time().ms < b.as_time().ms);
  return std::nullopt;
}

Value MinMax(EvalContext& ctx, const CallSite& site, const List& list, int sign) {
  const Value* best = nullptr;
  for (const Value& v : list) {
    if (v.is_null()) continue;
    if (!best) {
      best = &v;
      continue;
    }
    auto o = Order(v, *best);
    if (!o) {
      ctx.Fail(site.pos, std::string("cannot compare ") + KindName(v.kind()) + " with " +
                             KindName(best->kind()));
      return {};
    }
    if (*o * sign > 0) best = &v;
  }
  if (best && !best->is_number() && !best->is_string() && !best->is_time()) {
    ctx.Fail(site.pos, std::string("cannot order values of type ") + KindName(best->kind()));
    return {};
  }
  return best ? *best : Value();
}

Value RegexRun(EvalContext& ctx, const CallSite& site, Args a, int n, bool extract) {
  std::unique_ptr<RE2> owned;
  const RE2* re = site.regex;
  if (!re) {
    // NOTE: a pattern computed per event is compiled per event; literals are compiled once.
    RE2::Options opts;
    opts.set_log_errors(false);
    owned = std::make_unique<RE2>(Str(a[1]), opts);
    if (!owned->ok()) {
      ctx.Fail(site.pos, "invalid regex: " + owned->error());
      return {};
    }
    re = owned.get();
  }
  std::string_view text = Str(a[0]);
  if (!extract && site.simple) return Value(site.simple->Match(text));
  if (!extract) return Value(RE2::PartialMatch(text, *re));
  int group = n > 2 ? static_cast<int>(a[2]->as_int()) : (re->NumberOfCapturingGroups() > 0);
  if (group < 0 || group > re->NumberOfCapturingGroups()) {
    ctx.Fail(site.pos, "regex_extract: no group " + std::to_string(group) + " in the pattern");
    return {};
  }
  re2::StringPiece groups[10];
  int ngroups = std::min(group + 1, 10);
  if (group >= 10) {
    ctx.Fail(site.pos, "regex_extract: group numbers above 9 are not supported");
    return {};
  }
  if (!re->Match(text, 0, text.size(), RE2::UNANCHORED, groups, ngroups)) return {};
  if (groups[group].data() == nullptr) return {};
  return Value(std::string_view(groups[group].data(), groups[group].size()));
}

Value ToIntValue(const Value& v) {
  switch (v.kind()) {
    case Kind::kInt:
      return v;
    case Kind::kBool:
      return Value(int64_t{v.as_bool()});
    case Kind::kTime:
      return Value(v.as_time().ms);
    case Kind::kDouble: {
      double d = v.as_double();
      if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return {};
      return Value(static_cast<int64_t>(d));
    }
    case Kind::kString: {
      std::string_view s = Trim(v.as_string());
      int64_t i;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
      if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return Value(i);
      double d;
      auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec2 == std::errc() && p2 == s.data() + s.size() && !s.empty()) {
        return ToIntValue(Value(d));
      }
      return {};
    }
    default:
      return {};
  }
}

Value ToDoubleValue(const Value& v) {
  switch (v.kind()) {
    case Kind::kInt:
      return Value(static_cast<double>(v.as_int()));
    case Kind::kDouble:
      return v;
    case Kind::kBool:
      return Value(v.as_bool() ? 1.0 : 0.0);
    case Kind::kTime:
      return Value(static_cast<double>(v.as_time().ms));
    case Kind::kString: {
      std::string_view s = Trim(v.as_string());
      double d;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return Value(d);
      return {};
    }
    default:
      return {};
  }
}

Value Lookup(const Value& container, const Value& key) {
  if (container.is_map()) {
    if (!key.is_string()) return {};
    const Value* v = container.Find(key.as_string());
    return v ? *v : Value();
  }
  if (!key.is_int()) return {};
  const List& l = container.as_list();
  int64_t i = key.as_int();
  if (i < 0) i += static_cast<int64_t>(l.size());
  if (i < 0 || i >= static_cast<int64_t>(l.size())) return {};
  return l[i];
}

#define SR_FN [](EvalContext & ctx, const CallSite& site, Args a, int n) -> Value

const KindMask kStrList = kMaskString | kMaskList;
const KindMask kSized = kMaskString | kMaskList | kMaskMap;
const KindMask kTimeLike = kMaskTime | kMaskInt;
const KindMask kContainer = kMaskList | kMaskMap;

std::vector<Builtin> MakeBuiltins() {
  return {// ---- strings ----
          {"starts_with", "starts_with(string, string)", 2, 2, {kMaskString, kMaskString}, true,
           true, RBool, SR_FN{return Value(Str(a[0]).starts_with(Str(a[1])));
}
}  // namespace
, {"ends_with", "ends_with(string, string)", 2, 2, {kMaskString, kMaskString}, true, true, RBool,
   SR_FN{return Value(Str(a[0]).ends_with(Str(a[1])));
}  // namespace streamrec::expr
}
, {"contains", "contains(string, string) or contains(list, value)", 2, 2, {kStrList, kMaskAny},
   true, true, RBool,
   SR_FN{if (a[0]->is_string()){if (!a[1]->is_string()){ctx.Fail(
       site.pos,
       std::string("contains: a string can only contain a string, got ") + KindName(a[1]->kind()));
return {};
}
return Value(Str(a[0]).find(Str(a[1])) != std::string_view::npos);
}
for (const Value& v : a[0]->as_list()) {
  if (v == *a[1]) return Value(true);
}
return Value(false);
}
}
, {"substring", "substring(string, start[, end])", 2, 3, {kMaskString, kMaskInt, kMaskInt}, true,
   true, RString, SR_FN{std::string_view s = Str(a[0]);
int64_t len = static_cast<int64_t>(s.size());
int64_t b = std::clamp<int64_t>(a[1]->as_int(), 0, len);
int64_t e = n > 2 ? std::clamp<int64_t>(a[2]->as_int(), b, len) : len;
return Value(s.substr(b, e - b));
}
}
, {"lower", "lower(string)", 1, 1, {kMaskString}, true, true, RString,
   SR_FN{std::string s(Str(a[0]));
for (char& c : s) {
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}
return Value(std::move(s));
}
}
, {"upper", "upper(string)", 1, 1, {kMaskString}, true, true, RString,
   SR_FN{std::string s(Str(a[0]));
for (char& c : s) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
}
return Value(std::move(s));
}
}
, {"trim", "trim(string)", 1, 1, {kMaskString}, true, true, RString,
   SR_FN{return Value(Trim(Str(a[0])));
}
}
, {"split", "split(string, separator)", 2, 2, {kMaskString, kMaskString}, true, true, RStringList,
   SR_FN{std::string_view s = Str(a[0]), sep = Str(a[1]);
List out;
if (sep.empty()) {
  out.emplace_back(s);
  return Value(std::move(out));
}
size_t i = 0;
while (true) {
  size_t j = s.find(sep, i);
  if (j == std::string_view::npos) {
    out.emplace_back(s.substr(i));
    break;
  }
  out.emplace_back(s.substr(i, j - i));
  i = j + sep.size();
}
return Value(std::move(out));
}
}
, {"replace", "replace(string, from, to)", 3, 3, {kMaskString, kMaskString, kMaskString}, true,
   true, RString, SR_FN{std::string_view s = Str(a[0]), from = Str(a[1]), to = Str(a[2]);
if (from.empty()) return *a[0];
std::string out;
size_t i = 0;
while (true) {
  size_t j = s.find(from, i);
  if (j == std::string_view::npos) break;
  out.append(s.substr(i, j - i)).append(to);
  i = j + from.size();
}
out.append(s.substr(i));
return Value(std::move(out));
}
}
, {"length", "length(string | list | map)", 1, 1, {kSized}, true, true, RInt,
   SR_FN{if (a[0]->is_string()) return Value(static_cast<int64_t>(a[0]->as_string().size()));
if (a[0]->is_list()) return Value(static_cast<int64_t>(a[0]->as_list().size()));
return Value(static_cast<int64_t>(a[0]->as_map().size()));
}
}
, {"regex_match", "regex_match(string, pattern)", 2, 2, {kMaskString, kMaskString}, true, true,
   RBool, SR_FN{return RegexRun(ctx, site, a, n, false);
}
}
, {"regex_extract", "regex_extract(string, pattern[, group])", 2, 3,
   {kMaskString, kMaskString, kMaskInt}, true, true, RString,
   SR_FN{return RegexRun(ctx, site, a, n, true);
}
}
, {"join", "join(list, separator)", 2, 2, {kMaskList, kMaskString}, true, true, RString,
   SR_FN{std::string out;
bool first = true;
for (const Value& v : a[0]->as_list()) {
  if (!first) out += Str(a[1]);
  first = false;
  out += ToText(v);
}
return Value(std::move(out));
}
}
,
    // ---- URLs ----
    {"url_path", "url_path(url)", 1, 1, {kMaskString}, true, true, RString,
     SR_FN{return Value(UrlPath(Str(a[0])));
}
}
, {"url_param", "url_param(url, name)", 2, 2, {kMaskString, kMaskString}, true, true, RString,
   SR_FN{std::string_view url = Str(a[0]);
size_t q = url.find('?');
if (q == std::string_view::npos) return {};
std::string_view query = url.substr(q + 1);
query = query.substr(0, query.find('#'));
while (!query.empty()) {
  size_t amp = query.find('&');
  std::string_view pair = query.substr(0, amp);
  size_t eq = pair.find('=');
  std::string_view key = pair.substr(0, eq);
  if (key == Str(a[1]) || PercentDecode(key) == Str(a[1])) {
    return Value(eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1)));
  }
  if (amp == std::string_view::npos) break;
  query.remove_prefix(amp + 1);
}
return {};
}
}
, {"url_segment", "url_segment(url, index)", 2, 2, {kMaskString, kMaskInt}, true, true, RString,
   SR_FN{auto segs = Segments(UrlPath(Str(a[0])));
int64_t i = a[1]->as_int();
if (i < 0) i += static_cast<int64_t>(segs.size());
if (i < 0 || i >= static_cast<int64_t>(segs.size())) return {};
return Value(PercentDecode(segs[i]));
}
}
, {"url_match", "url_match(url, '/products/{slug}')", 2, 2, {kMaskString, kMaskString}, true, true,
   RStringMap, SR_FN{Map out;
std::optional<UrlPattern> parsed;  // a pattern computed per event is parsed per event
const UrlPattern& pattern = site.url_pattern ? *site.url_pattern : parsed.emplace(Str(a[1]));
bool matched = pattern.Match(Str(a[0]), [&](size_t param, std::string_view seg) {
  out.push_back({pattern.names()[param], Value(PercentDecode(seg))});
});
return matched ? Value(std::move(out)) : Value();
}
}
,
    // ---- numbers and time ----
    {"to_int", "to_int(value)", 1, 1, {kMaskAny}, true, true, RInt, SR_FN{return ToIntValue(*a[0]);
}
}
, {"to_double", "to_double(value)", 1, 1, {kMaskAny}, true, true, RDouble,
   SR_FN{return ToDoubleValue(*a[0]);
}
}
, {"to_string", "to_string(value)", 1, 1, {kMaskAny}, true, true, RString,
   SR_FN{return a[0]->is_string() ? *a[0] : Value(ToText(*a[0]));
}
}
, {"abs", "abs(number)", 1, 1, {kMaskNumber}, true, true, RNumber,
   SR_FN{if (a[0]->is_double()) return Value(std::fabs(a[0]->as_double()));
if (a[0]->as_int() == INT64_MIN) {
  ctx.Fail(site.pos, "integer overflow");
  return {};
}
return Value(a[0]->as_int() < 0 ? -a[0]->as_int() : a[0]->as_int());
}
}
, {"round", "round(number)", 1, 1, {kMaskNumber}, true, true, RInt,
   SR_FN{return a[0]->is_int() ? *a[0] : ToIntValue(Value(std::round(a[0]->as_double())));
}
}
, {"floor", "floor(number)", 1, 1, {kMaskNumber}, true, true, RInt,
   SR_FN{return a[0]->is_int() ? *a[0] : ToIntValue(Value(std::floor(a[0]->as_double())));
}
}
, {"ceil", "ceil(number)", 1, 1, {kMaskNumber}, true, true, RInt,
   SR_FN{return a[0]->is_int() ? *a[0] : ToIntValue(Value(std::ceil(a[0]->as_double())));
}
}
, {"now_ms", "now_ms()", 0, 0, {}, false, false, RTime,
   SR_FN{return Value(TimeMs{ctx.now_ms ? *ctx.now_ms : common::NowMs()});
}
}
, {"parse_time", "parse_time(string | int)", 1, 1, {kMaskString | kTimeLike}, true, true, RTime,
   SR_FN{if (!a[0]->is_string()) return Value(TimeMs{TimeArg(a[0])});
auto ms = ParseIsoTime(Trim(Str(a[0])));
return ms ? Value(TimeMs{*ms}) : Value();
}
}
, {"format_time", "format_time(time[, pattern])", 1, 2, {kTimeLike, kMaskString}, true, true,
   RString, SR_FN{if (n == 1) return Value(FormatIsoTime(TimeArg(a[0])));
return Value(FormatTime(TimeArg(a[0]), Str(a[1])));
}
}
,
    // ---- lists and maps ----
    {"size", "size(list | map | string)", 1, 1, {kSized}, true, true, RInt,
     SR_FN{if (a[0]->is_string()) return Value(static_cast<int64_t>(a[0]->as_string().size()));
if (a[0]->is_list()) return Value(static_cast<int64_t>(a[0]->as_list().size()));
return Value(static_cast<int64_t>(a[0]->as_map().size()));
}
}
, {"take", "take(list, n)", 2, 2, {kMaskList, kMaskInt}, true, true, RFirst,
   SR_FN{const List& l = a[0]->as_list();
size_t k = static_cast<size_t>(std::clamp<int64_t>(a[1]->as_int(), 0, l.size()));
if (k == l.size()) return *a[0];
return Value(List(l.begin(), l.begin() + k));
}
}
, {"last", "last(list, n)", 2, 2, {kMaskList, kMaskInt}, true, true, RFirst,
   SR_FN{const List& l = a[0]->as_list();
size_t k = static_cast<size_t>(std::clamp<int64_t>(a[1]->as_int(), 0, l.size()));
if (k == l.size()) return *a[0];
return Value(List(l.end() - k, l.end()));
}
}
, {"distinct", "distinct(list)", 1, 1, {kMaskList}, true, true, RFirst,
   SR_FN{const List& l = a[0]->as_list();
List out;
// Small lists: pairwise; large ones: by canonical JSON text (1 and 1.0 differ there,
// which is acceptable for the ids these lists hold).
if (l.size() <= 32) {
  for (const Value& v : l) {
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
} else {
  std::unordered_set<std::string> seen;
  for (const Value& v : l) {
    if (seen.insert(ToJson(v)).second) out.push_back(v);
  }
}
return Value(std::move(out));
}
}
, {"sum", "sum(list)", 1, 1, {kMaskList}, true, true, RSum, SR_FN{int64_t isum = 0;
double dsum = 0;
bool is_double = false;
for (const Value& v : a[0]->as_list()) {
  if (v.is_null()) continue;
  if (!v.is_number()) {
    ctx.Fail(site.pos, std::string("sum: list holds a ") + KindName(v.kind()));
    return {};
  }
  if (v.is_double() || is_double) {
    if (!is_double) dsum = static_cast<double>(isum);
    is_double = true;
    dsum += v.as_number();
  } else if (__builtin_add_overflow(isum, v.as_int(), &isum)) {
    ctx.Fail(site.pos, "integer overflow");
    return {};
  }
}
return is_double ? Value(dsum) : Value(isum);
}
}
, {"min", "min(list)", 1, 1, {kMaskList}, true, true, RElement,
   SR_FN{return MinMax(ctx, site, a[0]->as_list(), -1);
}
}
, {"max", "max(list)", 1, 1, {kMaskList}, true, true, RElement,
   SR_FN{return MinMax(ctx, site, a[0]->as_list(), 1);
}
}
, {"keys", "keys(map)", 1, 1, {kMaskMap}, true, true, RStringList, SR_FN{List out;
for (const MapEntry& e : a[0]->as_map()) out.emplace_back(e.key);
return Value(std::move(out));
}
}
, {"get", "get(map, key[, default]) or get(list, index[, default])", 2, 3,
   {kContainer | kMaskNull, kMaskString | kMaskInt | kMaskNull, kMaskAny}, false, true, RElement,
   SR_FN{Value v = a[0]->is_null() ? Value() : Lookup(*a[0], *a[1]);
if (v.is_null() && n > 2) return *a[2];
return v;
}
}
, {"has", "has(map, key)", 2, 2, {kMaskMap, kMaskString}, true, true, RBool,
   SR_FN{return Value(a[0]->Find(Str(a[1])) != nullptr);
}
}
,
}
;
}

}  // namespace

std::optional<SimplePattern> SimplePattern::Parse(std::string_view p) {
  SimplePattern out;
  if (!p.empty() && p.front() == '^') {
    out.anchor_start_ = true;
    p.remove_prefix(1);
  }
  if (!p.empty() && p.back() == '$' && (p.size() < 2 || p[p.size() - 2] != '\\')) {
    out.anchor_end_ = true;
    p.remove_suffix(1);
  }
  auto literal = [](char c) {
    return c > ' ' && c < 127 &&
           std::string_view("\\.[](){}|*+?^$").find(c) == std::string_view::npos;
  };
  auto set = [](std::array<uint64_t, 2>& bits, unsigned char c) {
    bits[c / 64] |= 1ull << (c % 64);
  };
  size_t i = 0;
  while (i < p.size()) {
    std::array<uint64_t, 2> bits = {0, 0};
    char c = p[i];
    if (literal(c)) {
      set(bits, c);
      ++i;
    } else if (c == '\\' && i + 1 < p.size() && p[i + 1] > ' ' && p[i + 1] < 127 &&
               !std::isalnum(static_cast<unsigned char>(p[i + 1]))) {
      set(bits, p[i + 1]);  // an escaped punctuation character is itself
      i += 2;
    } else if (c == '[') {
      size_t j = i + 1;
      if (j < p.size() && (p[j] == '^' || p[j] == ']')) return std::nullopt;
      while (j < p.size() && p[j] != ']') {
        char lo = p[j];
        if (lo <= ' ' || lo >= 127 || lo == '\\' || lo == '[') return std::nullopt;
        char hi = lo;
        if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
          hi = p[j + 2];
          if (hi <= ' ' || hi >= 127 || hi == '\\' || hi == '[' || hi < lo) return std::nullopt;
          j += 3;
        } else {
          ++j;
        }
        for (int k = lo; k <= hi; ++k) set(bits, static_cast<unsigned char>(k));
      }
      if (j >= p.size()) return std::nullopt;
      i = j + 1;
    } else {
      return std::nullopt;
    }
    if (i < p.size() && std::string_view("*+?{").find(p[i]) != std::string_view::npos) {
      return std::nullopt;  // a quantifier applies to the last atom
    }
    out.atoms_.push_back(bits);
  }
  // The leading atoms that accept one byte each (most of a typical pattern) compare as a block.
  for (const auto& bits : out.atoms_) {
    if (std::popcount(bits[0]) + std::popcount(bits[1]) != 1) break;
    const int word = bits[0] != 0 ? 0 : 1;
    out.literal_prefix_ += static_cast<char>(word * 64 + std::countr_zero(bits[word]));
  }
  return out;
}

bool SimplePattern::MatchAt(std::string_view text, size_t at) const {
  if (text.substr(at, literal_prefix_.size()) != literal_prefix_) return false;
  for (size_t k = literal_prefix_.size(); k < atoms_.size(); ++k) {
    auto c = static_cast<unsigned char>(text[at + k]);
    if (c >= 128 || !((atoms_[k][c / 64] >> (c % 64)) & 1)) return false;
  }
  return true;
}

bool SimplePattern::Match(std::string_view text) const {
  if (text.size() < atoms_.size()) return false;
  size_t last = text.size() - atoms_.size();
  if (anchor_start_ && anchor_end_) return last == 0 && MatchAt(text, 0);
  if (anchor_start_) return MatchAt(text, 0);
  if (anchor_end_) return MatchAt(text, last);
  for (size_t at = 0; at <= last; ++at) {
    if (MatchAt(text, at)) return true;
  }
  return false;
}

std::string_view UrlPath(std::string_view url) {
  size_t start = std::string_view::npos;  // npos: `url` is already a path
  // A scheme is the first "://" when no '/', '?' or '#' comes before it.
  for (size_t at = 0;; ++at) {
    at = FindAnyOf<':', '/', '?', '#'>(url, at);
    if (at == std::string_view::npos || url[at] != ':') break;
    if (url.substr(at + 1, 2) == "//") {
      start = at + 3;
      break;
    }
  }
  if (start == std::string_view::npos && url.starts_with("//")) start = 2;
  if (start != std::string_view::npos) {
    const size_t p = FindAnyOf<'/', '?', '#'>(url, start);
    if (p == std::string_view::npos || url[p] != '/') return "/";
    url.remove_prefix(p);
  }
  return url.substr(0, FindAnyOf<'?', '#'>(url));
}

bool NextUrlSegment(std::string_view path, size_t* at, std::string_view* segment) {
  while (*at < path.size()) {
    size_t end = FindAnyOf<'/'>(path, *at);
    if (end == std::string_view::npos) end = path.size();
    const size_t begin = *at;
    *at = end + 1;
    if (end > begin) {
      *segment = path.substr(begin, end - begin);
      return true;
    }
  }
  return false;
}

UrlPattern::UrlPattern(std::string_view pattern) {
  size_t at = 0;
  for (std::string_view segment; NextUrlSegment(pattern, &at, &segment);) {
    Part part;
    if (segment.size() >= 2 && segment.front() == '{' && segment.back() == '}') {
      part.kind = Part::kParam;
      part.param = names_.size();
      names_.emplace_back(segment.substr(1, segment.size() - 2));
    } else if (segment == "*") {
      part.kind = Part::kAny;
    } else {
      part.kind = Part::kLiteral;
      part.text = segment;
    }
    parts_.push_back(std::move(part));
  }
  if (!parts_.empty() && parts_.back().kind == Part::kLiteral && parts_.back().text == "**") {
    parts_.back().kind = Part::kRest;
  }
}

size_t UrlPattern::Find(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  return SIZE_MAX;
}

bool UrlMatchField(std::string_view url, const UrlPattern& pattern, size_t param, Value& out) {
  std::string_view found;
  bool has = false;
  if (!pattern.Match(url, [&](size_t i, std::string_view seg) {
        if (i == param) {
          found = seg;
          has = true;
        }
      })) {
    return false;
  }
  if (has) {
    AssignPercentDecoded(out, found);
  } else {
    out.Reset();
  }
  return true;
}

KindMask TypeBit(const Type& type) {
  if (type.is_any()) return 0;
  return 1u << (static_cast<int>(type.tag()) - 1);  // Type::Tag is Kind shifted by kAny
}

std::string MaskName(KindMask mask) {
  if ((mask & kMaskNumber) == kMaskNumber) {
    std::string rest = MaskName(mask & ~kMaskNumber);
    return rest.empty() ? "number" : "number or " + rest;
  }
  std::string out;
  for (int k = 0; k < 8; ++k) {
    if (!(mask & (1u << k)) || k == static_cast<int>(Kind::kNull)) continue;
    if (!out.empty()) out += " or ";
    out += KindName(static_cast<Kind>(k));
  }
  return out;
}

const std::vector<Builtin>& Builtins() {
  static const std::vector<Builtin> kBuiltins = MakeBuiltins();
  return kBuiltins;
}

const Builtin* FindBuiltin(std::string_view name) {
  for (const Builtin& b : Builtins()) {
    if (name == b.name) return &b;
  }
  return nullptr;
}

bool IsLambdaFunction(std::string_view name) {
  return name == "filter" || name == "map" || name == "any" || name == "all";
}

}  // namespace streamrec::expr
