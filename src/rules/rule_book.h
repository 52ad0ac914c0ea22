// The rule sets of every tenant and placement, with fallbacks, persisted as JSON in the
// store (kCatalog "r" keys) so that rules survive restarts. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "common/status.h"
#include "rules/rules.h"
#include "store/store.h"

namespace streamrec::rules {

class RuleBook {
 public:
  static constexpr std::string_view kAnyTenant = "*";
  static constexpr std::string_view kDefaultPlacement = "default";
  static constexpr size_t kMaxEntries = 10'000;

  //! Adds or replaces the rules of (tenant, placement); kTooLarge past kMaxEntries.
  common::Status Set(std::string_view tenant, std::string_view placement, RuleSet rules);
  bool Remove(std::string_view tenant, std::string_view placement);
  //! The rules for (tenant, placement), else (tenant, "default"), else ("*", placement), else
  //! ("*", "default"); nullptr when none. The set stays valid while the caller holds it,
  //! even if it is replaced meanwhile.
  std::shared_ptr<const RuleSet> Find(std::string_view tenant, std::string_view placement) const;
  size_t size() const;

  //! Config {tenant: {placement: rules}} (JSON or YAML); entries it names are replaced, all
  //! or nothing. Errors name "tenant.placement.rule".
  common::Status LoadJson(std::string_view json);
  common::Status LoadYaml(std::string_view yaml);
  //! The whole book in the config shape, tenants and placements in name order.
  std::string ToJson() const;

  //! Replaces the stored book with this one (one synced WriteBatch).
  common::Status Save(store::Store& store) const;
  //! Replaces this book with the stored one.
  common::Status Restore(store::Store& store);

 private:
  common::Status LoadValue(const boost::json::value& config);
  mutable std::shared_mutex mu_;
  // tenant \0 placement -> rules
  std::map<std::string, std::shared_ptr<const RuleSet>, std::less<>> entries_;
};

}  // namespace streamrec::rules
