#include "rules/rules.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>

#include "rules/text.h"

namespace streamrec::rules {

namespace json = boost::json;
using catalog::Item;
using common::Status;

struct Boost {
  bool tag = false;  // else category
  std::string value;
  double factor = 1;
  std::string reason;  // "boost:category=shoes x1.5", built once at load
};

struct Pin {
  std::string item_id;
  size_t position = 1;  // 1-based
};

struct RuleSet::Config {
  std::string json = "{}";  // canonical source
  bool exclude_context = true;
  int64_t exclude_seen_ms = -1;  // -1 off, 0 whole history
  bool exclude_bought = false;
  bool catalog_only = false, available_only = false, published_only = false;
  std::vector<std::string> include_categories, exclude_categories;
  bool same_category = false, complementary = false;
  bool price_band = false;
  double price_min = 0, price_max = INFINITY;
  double min_ratio = 0, max_ratio = INFINITY;
  bool price_relative = false;
  std::vector<Boost> boosts;
  std::vector<Pin> pins;  // by position
  size_t max_per_category = 0;
  size_t limit = 0;  // 0: no limit
  std::string fill_from;

  bool needs_item = false;     // some rule reads catalog attributes of candidates
  bool needs_context = false;  // some rule reads the context item's attributes
};

namespace {

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = a[i], y = b[i];
    if (x != y && std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

bool Contains(const std::vector<std::string>& list, std::string_view v) {
  for (const auto& e : list) {
    if (EqualsIgnoreCase(e, v)) return true;
  }
  return false;
}

bool Intersects(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const auto& x : a) {
    if (Contains(b, x)) return true;
  }
  return false;
}

//! A set of string_views in one flat open-addressed table: a request's id sets without an
//! allocation per id.
class IdSet {
 public:
  explicit IdSet(size_t expected) {
    size_t n = 16;
    while (n < expected * 2) n <<= 1;
    slots_.resize(n);
  }
  //! True when newly inserted. NOTE: the viewed bytes must outlive the set.
  bool Insert(std::string_view id) {
    if (size_ * 2 >= slots_.size()) Grow();
    return InsertSlot(id);
  }
  bool Contains(std::string_view id) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = std::hash<std::string_view>{}(id)&mask;; i = (i + 1) & mask) {
      if (slots_[i].data() == nullptr) return false;
      if (slots_[i] == id) return true;
    }
  }

 private:
  bool InsertSlot(std::string_view id) {
    size_t mask = slots_.size() - 1;
    for (size_t i = std::hash<std::string_view>{}(id)&mask;; i = (i + 1) & mask) {
      if (slots_[i].data() == nullptr) {
        slots_[i] = id.data() ? id : std::string_view("", 0);
        ++size_;
        return true;
      }
      if (slots_[i] == id) return false;
    }
  }
  void Grow() {
    std::vector<std::string_view> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (auto s : old) {
      if (s.data()) InsertSlot(s);
    }
  }
  std::vector<std::string_view> slots_;
  size_t size_ = 0;
};

// --- config parsing

Status RuleError(std::string_view rule, std::string_view field, std::string message) {
  std::string name(rule);
  if (!field.empty()) name += "." + std::string(field);
  return Status::Invalid("invalid_rule", name + ": " + message, name);
}

common::Result<bool> Bool(const json::value& v, std::string_view rule) {
  if (!v.is_bool()) return RuleError(rule, "", "must be true or false");
  return v.get_bool();
}

common::Result<double> Number(const json::value& v, std::string_view rule, std::string_view field,
                              double min, bool exclusive_min) {
  if (!v.is_number()) return RuleError(rule, field, "must be a number");
  double d = v.to_number<double>();
  if (!std::isfinite(d) || d < min || (exclusive_min && d == min)) {
    return RuleError(rule, field,
                     std::string("must be a number ") + (exclusive_min ? "> " : ">= ") +
                         json::serialize(json::value(min)));
  }
  return d;
}

common::Result<size_t> Count(const json::value& v, std::string_view rule, std::string_view field,
                             size_t max) {
  if (!v.is_int64() || v.get_int64() < 1 || static_cast<uint64_t>(v.get_int64()) > max) {
    return RuleError(rule, field, "must be an integer from 1 to " + std::to_string(max));
  }
  return static_cast<size_t>(v.get_int64());
}

common::Result<std::vector<std::string>> Strings(const json::value& v, std::string_view rule) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.emplace_back(View(v.get_string()));
  } else if (v.is_array()) {
    if (v.get_array().size() > kMaxRuleEntries) {
      return RuleError(rule, "", "more than " + std::to_string(kMaxRuleEntries) + " entries");
    }
    for (const auto& e : v.get_array()) {
      if (!e.is_string() || e.get_string().empty()) {
        return RuleError(rule, "", "entries must be non-empty strings");
      }
      out.emplace_back(View(e.get_string()));
    }
  } else {
    return RuleError(rule, "", "must be a list of strings");
  }
  if (out.empty()) return RuleError(rule, "", "must not be empty");
  return out;
}

//! Checks that `o` only has keys among `allowed`.
Status OnlyKeys(const json::object& o, std::string_view rule,
                std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : o) {
    std::string_view key(k.data(), k.size());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return RuleError(rule, key, "unknown field");
    }
  }
  return Status::Ok();
}

std::string FactorText(double f) {
  // Boost.JSON writes doubles in exponent form (1.5E0); %g reads "1.5".
  char buf[32];
  int n = std::snprintf(buf, sizeof(buf), "%g", f);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

Status ParseRule(std::string_view rule, const json::value& v, RuleSet::Config& c) {
  if (rule == "exclude_seen") {
    if (v.is_bool()) {
      c.exclude_seen_ms = v.get_bool() ? 0 : -1;
    } else if (v.is_number() || v.is_object()) {
      const json::value* minutes = &v;
      if (v.is_object()) {
        if (auto s = OnlyKeys(v.get_object(), rule, {"minutes"}); !s.ok()) return s;
        minutes = v.get_object().if_contains("minutes");
        if (!minutes) return RuleError(rule, "minutes", "is required");
      }
      auto m = Number(*minutes, rule, "minutes", 0, true);
      if (!m.ok()) return m.status();
      c.exclude_seen_ms = std::max<int64_t>(1, static_cast<int64_t>(*m * 60'000));
    } else {
      return RuleError(rule, "", "must be true, a number of minutes or {minutes: N}");
    }
    return Status::Ok();
  }
  using Flag = bool RuleSet::Config::*;
  static const std::pair<std::string_view, Flag> kFlags[] = {
      {"exclude_context", &RuleSet::Config::exclude_context},
      {"exclude_bought", &RuleSet::Config::exclude_bought},
      {"catalog_only", &RuleSet::Config::catalog_only},
      {"available_only", &RuleSet::Config::available_only},
      {"published_only", &RuleSet::Config::published_only},
      {"same_category", &RuleSet::Config::same_category},
      {"complementary", &RuleSet::Config::complementary},
  };
  for (auto [name, flag] : kFlags) {
    if (rule != name) continue;
    auto b = Bool(v, rule);
    if (!b.ok()) return b.status();
    c.*flag = *b;
    return Status::Ok();
  }
  if (rule == "include_categories" || rule == "exclude_categories") {
    auto list = Strings(v, rule);
    if (!list.ok()) return list.status();
    (rule == "include_categories" ? c.include_categories : c.exclude_categories) = *list;
    return Status::Ok();
  }
  if (rule == "price_band") {
    if (!v.is_object() || v.get_object().empty()) {
      return RuleError(rule, "", "must be an object with min/max and/or min_ratio/max_ratio");
    }
    const auto& o = v.get_object();
    if (auto s = OnlyKeys(o, rule, {"min", "max", "min_ratio", "max_ratio"}); !s.ok()) return s;
    for (auto [field, out] : {std::pair<std::string_view, double*>{"min", &c.price_min},
                              {"max", &c.price_max},
                              {"min_ratio", &c.min_ratio},
                              {"max_ratio", &c.max_ratio}}) {
      if (const auto* f = o.if_contains(field)) {
        auto d = Number(*f, rule, field, 0, false);
        if (!d.ok()) return d.status();
        *out = *d;
      }
    }
    if (c.price_min > c.price_max) return RuleError(rule, "min", "must not exceed max");
    if (c.min_ratio > c.max_ratio) return RuleError(rule, "min_ratio", "must not exceed max_ratio");
    c.price_band = true;
    c.price_relative = o.contains("min_ratio") || o.contains("max_ratio");
    return Status::Ok();
  }
  if (rule == "boost") {
    if (!v.is_object() || v.get_object().empty()) {
      return RuleError(rule, "", "must be {category: {name: factor}, tag: {name: factor}}");
    }
    if (auto s = OnlyKeys(v.get_object(), rule, {"category", "tag"}); !s.ok()) return s;
    for (const auto& [kind, map] : v.get_object()) {
      std::string kind_name(kind.data(), kind.size());
      if (!map.is_object()) return RuleError(rule, kind_name, "must map names to factors");
      for (const auto& [name, factor] : map.get_object()) {
        std::string field = kind_name + "." + std::string(name.data(), name.size());
        auto f = Number(factor, rule, field, 0, true);
        if (!f.ok()) return f.status();
        if (name.empty()) return RuleError(rule, kind_name, "names must not be empty");
        Boost b{kind_name == "tag", std::string(name.data(), name.size()), *f, {}};
        b.reason = "boost:" + kind_name + "=" + b.value + " x" + FactorText(*f);
        c.boosts.push_back(std::move(b));
      }
    }
    if (c.boosts.size() > 64) return RuleError(rule, "", "at most 64 boosts");
    return Status::Ok();
  }
  if (rule == "pin") {
    // [{item: id, position: n}] or {id: n}
    auto add = [&](std::string_view id, const json::value& pos) -> Status {
      if (id.empty()) return RuleError(rule, "item", "must be a non-empty item id");
      auto p = Count(pos, rule, "position", kMaxLimit);
      if (!p.ok()) return p.status();
      for (const auto& pin : c.pins) {
        if (pin.position == *p) {
          return RuleError(rule, "position", "two pins at position " + std::to_string(*p));
        }
      }
      c.pins.push_back({std::string(id), *p});
      return Status::Ok();
    };
    if (v.is_object()) {
      for (const auto& [id, pos] : v.get_object()) {
        if (auto s = add(std::string_view(id.data(), id.size()), pos); !s.ok()) return s;
      }
    } else if (v.is_array()) {
      for (const auto& e : v.get_array()) {
        if (!e.is_object()) return RuleError(rule, "", "entries must be {item, position}");
        if (auto s = OnlyKeys(e.get_object(), rule, {"item", "position"}); !s.ok()) return s;
        const auto* item = e.get_object().if_contains("item");
        const auto* pos = e.get_object().if_contains("position");
        if (!item || !item->is_string()) return RuleError(rule, "item", "must be an item id");
        if (!pos) return RuleError(rule, "position", "is required");
        if (auto s = add(View(item->get_string()), *pos); !s.ok()) return s;
      }
    } else {
      return RuleError(rule, "", "must be [{item, position}] or {item_id: position}");
    }
    if (c.pins.size() > kMaxRuleEntries) return RuleError(rule, "", "too many pins");
    std::sort(c.pins.begin(), c.pins.end(),
              [](const Pin& a, const Pin& b) { return a.position < b.position; });
    return Status::Ok();
  }
  if (rule == "diversity") {
    if (!v.is_object()) return RuleError(rule, "", "must be {max_per_category: K}");
    if (auto s = OnlyKeys(v.get_object(), rule, {"max_per_category"}); !s.ok()) return s;
    const auto* k = v.get_object().if_contains("max_per_category");
    if (!k) return RuleError(rule, "max_per_category", "is required");
    auto n = Count(*k, rule, "max_per_category", kMaxLimit);
    if (!n.ok()) return n.status();
    c.max_per_category = *n;
    return Status::Ok();
  }
  if (rule == "limit") {
    auto n = Count(v, rule, "", kMaxLimit);
    if (!n.ok()) return n.status();
    c.limit = *n;
    return Status::Ok();
  }
  if (rule == "fill_from") {
    if (v.is_string() && !v.get_string().empty()) {
      c.fill_from = View(v.get_string());
    } else if (v.is_bool()) {
      c.fill_from = v.get_bool() ? "fallback" : "";
    } else {
      return RuleError(rule, "", "must be the fallback's name, e.g. \"popularity\"");
    }
    return Status::Ok();
  }
  return Status::Invalid("invalid_rule", "unknown rule \"" + std::string(rule) + "\"",
                         std::string(rule));
}

// --- YAML to JSON

common::Result<json::value> YamlToJson(const YAML::Node& node, const std::string& path) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json::value(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return json::value(s);  // quoted: always a string
      if (s == "true" || s == "True" || s == "TRUE") return json::value(true);
      if (s == "false" || s == "False" || s == "FALSE") return json::value(false);
      if (s == "~" || s == "null") return json::value(nullptr);
      int64_t i = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
      if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return json::value(i);
      double d = 0;
      auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec2 == std::errc() && p2 == s.data() + s.size() && !s.empty()) return json::value(d);
      return json::value(s);
    }
    case YAML::NodeType::Sequence: {
      json::array a;
      size_t i = 0;
      for (const auto& e : node) {
        auto v = YamlToJson(e, path + "[" + std::to_string(i++) + "]");
        if (!v.ok()) return v.status();
        a.push_back(std::move(v).value());
      }
      return json::value(std::move(a));
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Status::Invalid("invalid_yaml", path + ": keys must be scalars", path);
        }
        const std::string& key = kv.first.Scalar();
        auto v = YamlToJson(kv.second, path.empty() ? key : path + "." + key);
        if (!v.ok()) return v.status();
        o[key] = std::move(v).value();
      }
      return json::value(std::move(o));
    }
  }
  return json::value(nullptr);
}

}  // namespace

namespace internal {

common::Result<json::value> ParseYamlAsJson(std::string_view yaml) {
  try {
    YAML::Node node = YAML::Load(std::string(yaml));
    return YamlToJson(node, "");
  } catch (const YAML::Exception& e) {
    return Status::Invalid("invalid_yaml",
                           "line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

common::Result<json::value> ParseJsonText(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec) return Status::Invalid("invalid_json", "rules: " + ec.message());
  return v;
}

}  // namespace internal

using internal::ParseJsonText;
using internal::ParseYamlAsJson;

// --- RuleSet

RuleSet::RuleSet() : config_(std::make_shared<const Config>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(const RuleSet&) = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(const RuleSet&) = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

common::Result<RuleSet> RuleSet::FromValue(const json::value& value) {
  if (!value.is_object()) {
    return Status::Invalid("invalid_rule", "a rule set must be an object of rules", "rules");
  }
  auto c = std::make_shared<Config>();
  for (const auto& [k, v] : value.get_object()) {
    if (auto s = ParseRule(std::string_view(k.data(), k.size()), v, *c); !s.ok()) return s;
  }
  if (!c->fill_from.empty() && c->limit == 0) {
    return RuleError("fill_from", "", "needs a limit (the length to fill up to)");
  }
  c->needs_context = c->same_category || c->complementary || c->price_relative;
  c->needs_item = c->catalog_only || c->available_only || c->published_only ||
                  !c->include_categories.empty() || !c->exclude_categories.empty() ||
                  c->needs_context || c->price_band || !c->boosts.empty() ||
                  c->max_per_category > 0;
  c->json = json::serialize(value);
  RuleSet set;
  set.config_ = std::move(c);
  return set;
}

common::Result<RuleSet> RuleSet::FromJson(std::string_view text) {
  auto v = ParseJsonText(text);
  if (!v.ok()) return v.status();
  return FromValue(*v);
}

common::Result<RuleSet> RuleSet::FromYaml(std::string_view yaml) {
  auto v = ParseYamlAsJson(yaml);
  if (!v.ok()) return v.status();
  if (v->is_null()) return RuleSet();
  return FromValue(*v);
}

std::string RuleSet::ToJson() const { return config_->json; }

namespace {

struct Cand {
  std::string_view id;
  double score = 0;
  std::shared_ptr<const Item> item;
  uint64_t boosts = 0;  // bit i: boost i applied
  bool fill = false;
  bool from_model = false;
  size_t pin = 0;  // 1-based position when pinned
};

const std::string* PrimaryCategory(const Cand& c) {
  return c.item && !c.item->categories.empty() ? &c.item->categories[0] : nullptr;
}

}  // namespace

Ruled RuleSet::Apply(const std::vector<models::ScoredItem>& candidates, std::string_view model,
                     const RuleContext& context, const catalog::Catalog& catalog,
                     const std::vector<models::ScoredItem>& fallback) const {
  const Config& c = *config_;
  Ruled out;

  // The context item, resolved from an id, handle or Shopify id.
  std::shared_ptr<const Item> ctx_item;
  std::string_view ctx_raw;
  if (context.context_item_id && !context.context_item_id->empty()) {
    ctx_raw = *context.context_item_id;
    ctx_item = catalog.Get(context.tenant, ctx_raw);
    if (!ctx_item && (c.needs_context || c.exclude_context)) {
      if (auto id = catalog.Resolve(context.tenant, ctx_raw)) {
        ctx_item = catalog.Get(context.tenant, *id);
      }
    }
  }
  const bool has_ctx = ctx_item != nullptr;

  IdSet seen(context.history.size() + 2);
  IdSet bought(c.exclude_bought ? context.history.size() : 0);
  if (c.exclude_context && !ctx_raw.empty()) {
    seen.Insert(ctx_raw);
    if (ctx_item) seen.Insert(ctx_item->id);
  }
  if (c.exclude_seen_ms >= 0 || c.exclude_bought) {
    int64_t cutoff = c.exclude_seen_ms > 0 ? context.now_ms - c.exclude_seen_ms : INT64_MIN;
    for (const auto& e : context.history) {
      if (c.exclude_seen_ms >= 0 && e.timestamp_ms >= cutoff) seen.Insert(e.item_id);
      if (c.exclude_bought && e.type == events::EventType::kPurchase) bought.Insert(e.item_id);
    }
  }

  // Which rules run (and which cannot for want of a context item), in application order.
  auto note = [&](bool on, const char* name, bool skipped = false) {
    if (on) out.applied_rules.emplace_back(skipped ? std::string(name) + ":skipped" : name);
  };
  note(c.exclude_seen_ms >= 0, "exclude_seen");
  note(c.exclude_bought, "exclude_bought");
  note(c.catalog_only, "catalog_only");
  note(c.available_only, "available_only");
  note(c.published_only, "published_only");
  note(!c.include_categories.empty(), "include_categories");
  note(!c.exclude_categories.empty(), "exclude_categories");
  note(c.same_category, "same_category", !has_ctx);
  note(c.complementary, "complementary", !has_ctx);
  note(c.price_band, "price_band", c.price_relative && (!has_ctx || ctx_item->price <= 0));
  note(!c.boosts.empty(), "boost");
  note(!c.pins.empty(), "pin");
  note(c.max_per_category > 0, "diversity");
  note(c.limit > 0, "limit");
  note(!c.fill_from.empty(), "fill_from");

  double lo = c.price_min, hi = c.price_max;
  if (c.price_relative && has_ctx && ctx_item->price > 0) {
    lo = std::max(lo, ctx_item->price * c.min_ratio);
    hi = std::min(hi, ctx_item->price * c.max_ratio);
  }
  const bool price_on = c.price_band && (lo > 0 || hi < INFINITY);

  // Filters. Rules that require an attribute drop items missing from the catalog; rules
  // that exclude on one keep them (nothing says they are sold out), unless catalog_only.
  auto passes = [&](Cand& cand) {
    if (seen.Contains(cand.id) || bought.Contains(cand.id)) return false;
    if (!c.needs_item) return true;
    cand.item = catalog.Get(context.tenant, cand.id);
    const Item* item = cand.item.get();
    if (!item) {
      return !(c.catalog_only || !c.include_categories.empty() ||
               (has_ctx && (c.same_category || c.complementary)) || price_on);
    }
    if (c.available_only && !item->available) return false;
    if (c.published_only && !item->published) return false;
    if (!c.include_categories.empty() && !Intersects(item->categories, c.include_categories)) {
      return false;
    }
    if (!c.exclude_categories.empty() && Intersects(item->categories, c.exclude_categories)) {
      return false;
    }
    if (has_ctx && c.same_category && !Intersects(item->categories, ctx_item->categories)) {
      return false;
    }
    if (has_ctx && c.complementary && Intersects(item->categories, ctx_item->categories)) {
      return false;
    }
    if (price_on && (item->price < lo || item->price > hi)) return false;
    return true;
  };
  auto boost = [&](Cand& cand) {
    if (!cand.item) return;
    for (size_t i = 0; i < c.boosts.size(); ++i) {
      const Boost& b = c.boosts[i];
      if (Contains(b.tag ? cand.item->tags : cand.item->categories, b.value)) {
        cand.score *= b.factor;
        cand.boosts |= uint64_t{1} << i;
      }
    }
  };
  auto by_score = [](const Cand& a, const Cand& b) { return a.score > b.score; };

  IdSet taken(candidates.size() + c.pins.size());
  std::vector<Cand> pool;
  pool.reserve(candidates.size());
  for (const auto& s : candidates) {
    Cand cand{s.item_id, s.score};
    cand.from_model = true;
    if (!taken.Insert(cand.id) || !passes(cand)) continue;
    boost(cand);
    pool.push_back(std::move(cand));
  }
  // Model order is kept unless a boost changed scores.
  if (!c.boosts.empty()) std::stable_sort(pool.begin(), pool.end(), by_score);

  // Pins: the pinned item moves out of the ranked list (or is fetched) and must pass the
  // filters too: a pin never shows a sold-out or already-bought item.
  std::vector<Cand> pinned;
  for (const Pin& pin : c.pins) {
    auto it =
        std::find_if(pool.begin(), pool.end(), [&](const Cand& x) { return x.id == pin.item_id; });
    if (it != pool.end()) {
      it->pin = pin.position;
      pinned.push_back(std::move(*it));
      pool.erase(it);
      continue;
    }
    Cand cand{pin.item_id, 0};
    if (taken.Contains(cand.id)) continue;  // a candidate the filters dropped
    if (!passes(cand)) continue;
    taken.Insert(cand.id);
    boost(cand);
    cand.pin = pin.position;
    pinned.push_back(std::move(cand));
  }

  // Diversity and limit over the ranked (unpinned) items, topped up from the fallback.
  size_t target = c.limit > 0 ? c.limit : SIZE_MAX;
  size_t slots = target > pinned.size() ? target - pinned.size() : 0;
  std::vector<Cand> chosen;
  chosen.reserve(std::min(slots, pool.size() + (c.fill_from.empty() ? 0 : fallback.size())));
  std::vector<std::pair<const std::string*, size_t>> per_category;
  auto take = [&](std::vector<Cand>& ranked) {
    for (auto& cand : ranked) {
      if (chosen.size() >= slots) return;
      if (c.max_per_category > 0) {
        if (const std::string* cat = PrimaryCategory(cand)) {
          auto it = std::find_if(per_category.begin(), per_category.end(),
                                 [&](const auto& p) { return EqualsIgnoreCase(*p.first, *cat); });
          if (it == per_category.end()) {
            per_category.emplace_back(cat, 1);
          } else if (it->second >= c.max_per_category) {
            continue;
          } else {
            ++it->second;
          }
        }
      }
      chosen.push_back(std::move(cand));
    }
  };
  take(pool);
  if (chosen.size() < slots && !c.fill_from.empty()) {
    std::vector<Cand> fill;
    fill.reserve(std::min(fallback.size(), kMaxLimit * 2));
    for (const auto& s : fallback) {
      Cand cand{s.item_id, s.score};
      cand.fill = true;
      if (taken.Contains(cand.id) || !passes(cand)) continue;
      taken.Insert(cand.id);
      boost(cand);
      fill.push_back(std::move(cand));
    }
    if (!c.boosts.empty()) std::stable_sort(fill.begin(), fill.end(), by_score);
    take(fill);
  }

  // Pins go to their positions (ascending, so earlier pins keep theirs), or last if short.
  for (auto& p : pinned) {
    size_t at = std::min(p.pin - 1, chosen.size());
    chosen.insert(chosen.begin() + static_cast<std::ptrdiff_t>(at), std::move(p));
  }

  out.items.reserve(chosen.size());
  std::string model_reason = "model:" + std::string(model);
  std::string fill_reason = "fill:" + c.fill_from;
  for (const auto& cand : chosen) {
    RuledItem r;
    r.item_id = std::string(cand.id);
    r.score = cand.score;
    if (cand.fill) {
      r.reasons.push_back(fill_reason);
    } else if (cand.from_model) {
      r.reasons.push_back(model_reason);
    }
    for (size_t i = 0; cand.boosts && i < c.boosts.size(); ++i) {
      if (cand.boosts & (uint64_t{1} << i)) r.reasons.push_back(c.boosts[i].reason);
    }
    if (cand.pin) r.reasons.push_back("pinned:" + std::to_string(cand.pin));
    out.items.push_back(std::move(r));
  }
  return out;
}

}  // namespace streamrec::rules
