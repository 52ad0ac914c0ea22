// Business rules applied to a model's candidates before serving, per tenant and placement
// ("product_page", "cart", "home", ...). Whatever order a config lists them in, rules run
// in one fixed order (docs/RULES.md):
//   1. filters: context item, exclude_seen, exclude_bought, catalog_only, available_only,
//      published_only, include_categories, exclude_categories, same_category, complementary,
//      price_band
//   2. boost (then candidates are re-sorted by boosted score; fill items stay after model ones)
//   3. pin        4. diversity        5. limit (fill_from tops up to the limit, same filters)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/status.h"
#include "events/event.h"
#include "models/item_model.h"

namespace boost::json {
class value;
}

namespace streamrec::rules {

//! One event of the user's recent history (pipeline::HistoryEntry carries the same fields).
struct HistoryEvent {
  std::string item_id;
  events::EventType type = events::EventType::kOther;
  int64_t timestamp_ms = 0;
};

struct RuleContext {
  std::string tenant;
  std::string placement;
  std::vector<HistoryEvent> history;  //!< any order
  //! The item being viewed (product page) or the last cart item: our id, handle or Shopify id.
  std::optional<std::string> context_item_id;
  int64_t now_ms = 0;
};

struct RuledItem {
  std::string item_id;
  double score = 0;
  //! Why it is here, e.g. "model:covisitation", "boost:category=shoes x1.5", "pinned:1",
  //! "fill:popularity".
  std::vector<std::string> reasons;
};

struct Ruled {
  std::vector<RuledItem> items;
  //! Rules that took effect, in application order; a rule that needed a context item and had
  //! none reads e.g. "same_category:skipped".
  std::vector<std::string> applied_rules;
};

//! Limits on one rule set, so a config cannot make a request expensive.
inline constexpr size_t kMaxRuleEntries = 256;  //!< categories, boosts, pins per rule
inline constexpr size_t kMaxLimit = 1000;

class RuleSet {
 public:
  //! An empty set: candidates pass through unchanged (reasons "model:<model>").
  RuleSet();
  ~RuleSet();
  RuleSet(const RuleSet&);
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(const RuleSet&);
  RuleSet& operator=(RuleSet&&) noexcept;

  //! A JSON object of rules, e.g. {"available_only": true, "limit": 10}. Errors (kInvalidArgument,
  //! reason "invalid_rule") name the rule and field, e.g. field "price_band.min_ratio".
  static common::Result<RuleSet> FromJson(std::string_view json);
  static common::Result<RuleSet> FromYaml(std::string_view yaml);
  static common::Result<RuleSet> FromValue(const boost::json::value& value);
  //! The canonical JSON of this set (what FromJson reads back), for persistence and GET.
  std::string ToJson() const;

  //! Applies the rules to `candidates` (best first) from `model`. `fallback` (best first,
  //! e.g. popular items) tops the list up to `limit` when fill_from is set.
  //! Cost: one catalog lookup per candidate considered (cached), strings only for results.
  Ruled Apply(const std::vector<models::ScoredItem>& candidates, std::string_view model,
              const RuleContext& context, const catalog::Catalog& catalog,
              const std::vector<models::ScoredItem>& fallback) const;

  struct Config;  // parsed rules; defined in rules.cc

 private:
  std::shared_ptr<const Config> config_;  // immutable: copies share it
};

}  // namespace streamrec::rules
