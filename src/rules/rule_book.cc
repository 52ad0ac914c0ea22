#include "rules/rule_book.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <boost/json.hpp>
#include <mutex>

#include "rules/text.h"

namespace streamrec::rules {

namespace json = boost::json;
using common::Status;

namespace {

constexpr char kRulesTag = 'r';  // kCatalog: "r" tenant \0 placement -> rule set JSON

std::string EntryKey(std::string_view tenant, std::string_view placement) {
  std::string k(tenant);
  k.push_back('\0');
  k.append(placement);
  return k;
}

Status CheckName(std::string_view name, const char* what) {
  if (name.empty() || name.size() > 256 || name.find('\0') != std::string_view::npos) {
    return Status::Invalid("invalid_rule",
                           std::string(what) + " must be 1 to 256 bytes without NUL", what);
  }
  return Status::Ok();
}

}  // namespace

Status RuleBook::Set(std::string_view tenant, std::string_view placement, RuleSet rules) {
  if (auto s = CheckName(tenant, "tenant"); !s.ok()) return s;
  if (auto s = CheckName(placement, "placement"); !s.ok()) return s;
  auto set = std::make_shared<const RuleSet>(std::move(rules));
  std::string key = EntryKey(tenant, placement);
  std::unique_lock lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second = std::move(set);
    return Status::Ok();
  }
  if (entries_.size() >= kMaxEntries) {
    return Status::Make(common::Code::kTooLarge, "too_many_rule_sets",
                        "at most " + std::to_string(kMaxEntries) + " rule sets");
  }
  entries_.emplace(std::move(key), std::move(set));
  return Status::Ok();
}

bool RuleBook::Remove(std::string_view tenant, std::string_view placement) {
  std::unique_lock lock(mu_);
  auto it = entries_.find(EntryKey(tenant, placement));
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

std::shared_ptr<const RuleSet> RuleBook::Find(std::string_view tenant,
                                              std::string_view placement) const {
  thread_local std::string key;  // no allocation per request
  std::shared_lock lock(mu_);
  for (auto [t, p] : {std::pair{tenant, placement}, std::pair{tenant, kDefaultPlacement},
                      std::pair{kAnyTenant, placement}, std::pair{kAnyTenant, kDefaultPlacement}}) {
    key.assign(t);
    key.push_back('\0');
    key.append(p);
    if (auto it = entries_.find(key); it != entries_.end()) return it->second;
  }
  return nullptr;
}

size_t RuleBook::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

Status RuleBook::LoadValue(const json::value& config) {
  if (!config.is_object()) {
    return Status::Invalid("invalid_rule", "rules config must be {tenant: {placement: rules}}",
                           "rules");
  }
  std::vector<std::pair<std::string, std::shared_ptr<const RuleSet>>> parsed;
  for (const auto& [tenant, placements] : config.get_object()) {
    std::string_view t(tenant.data(), tenant.size());
    if (auto s = CheckName(t, "tenant"); !s.ok()) return s;
    if (!placements.is_object()) {
      return Status::Invalid("invalid_rule", std::string(t) + " must map placements to rules",
                             std::string(t));
    }
    for (const auto& [placement, rules] : placements.get_object()) {
      std::string_view p(placement.data(), placement.size());
      if (auto s = CheckName(p, "placement"); !s.ok()) return s;
      auto set = RuleSet::FromValue(rules);
      if (!set.ok()) {
        Status s = set.status();
        std::string where = std::string(t) + "." + std::string(p);
        s.field = s.field.empty() ? where : where + "." + s.field;
        s.message = where + ": " + s.message;
        return s;
      }
      parsed.emplace_back(EntryKey(t, p), std::make_shared<const RuleSet>(std::move(set).value()));
    }
  }
  std::unique_lock lock(mu_);
  size_t added = 0;
  for (const auto& [key, set] : parsed) added += entries_.contains(key) ? 0 : 1;
  if (entries_.size() + added > kMaxEntries) {
    return Status::Make(common::Code::kTooLarge, "too_many_rule_sets",
                        "at most " + std::to_string(kMaxEntries) + " rule sets");
  }
  for (auto& [key, set] : parsed) entries_[key] = std::move(set);
  return Status::Ok();
}

Status RuleBook::LoadJson(std::string_view text) {
  auto v = internal::ParseJsonText(text);
  if (!v.ok()) return v.status();
  return LoadValue(*v);
}

Status RuleBook::LoadYaml(std::string_view yaml) {
  auto v = internal::ParseYamlAsJson(yaml);
  if (!v.ok()) return v.status();
  if (v->is_null()) return Status::Ok();
  return LoadValue(*v);
}

std::string RuleBook::ToJson() const {
  json::object root;
  std::shared_lock lock(mu_);
  for (const auto& [key, set] : entries_) {
    size_t nul = key.find('\0');
    auto& placements = root[key.substr(0, nul)];
    if (!placements.is_object()) placements.emplace_object();
    placements.get_object()[key.substr(nul + 1)] = json::parse(set->ToJson());
  }
  return json::serialize(root);
}

Status RuleBook::Save(store::Store& store) const {
  rocksdb::WriteBatch batch;
  auto* cf = store.cf(store::Cf::kCatalog);
  std::string begin(1, kRulesTag), end(1, kRulesTag + 1);
  // Later entries in one batch win over the range deletion before them.
  batch.DeleteRange(cf, begin, end);
  {
    std::shared_lock lock(mu_);
    for (const auto& [key, set] : entries_) batch.Put(cf, begin + key, set->ToJson());
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return store::FromRocks(store.db(store::Cf::kCatalog)->Write(wo, &batch), "save rules");
}

Status RuleBook::Restore(store::Store& store) {
  std::map<std::string, std::shared_ptr<const RuleSet>, std::less<>> loaded;
  std::string begin(1, kRulesTag), end(1, kRulesTag + 1);
  rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  auto* db = store.db(store::Cf::kCatalog);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, store.cf(store::Cf::kCatalog)));
  for (it->Seek(begin); it->Valid(); it->Next()) {
    std::string key = it->key().ToString().substr(1);
    auto set = RuleSet::FromJson(it->value().ToStringView());
    if (!set.ok()) {
      // Stored sets passed validation when saved; a failure here means a newer format.
      Status s = set.status();
      s.code = common::Code::kInternal;
      s.message = "stored rules " + key.substr(0, key.find('\0')) + ": " + s.message;
      return s;
    }
    loaded.emplace(std::move(key), std::make_shared<const RuleSet>(std::move(set).value()));
  }
  if (!it->status().ok()) return store::FromRocks(it->status(), "read rules");
  std::unique_lock lock(mu_);
  entries_ = std::move(loaded);
  return Status::Ok();
}

}  // namespace streamrec::rules
