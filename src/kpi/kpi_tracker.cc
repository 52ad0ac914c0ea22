#include "kpi/kpi_tracker.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <map>

#include "common/byte_codec.h"
#include "store/key_schema.h"

namespace streamrec::kpi {

namespace json = boost::json;
using common::Status;
using events::EventType;
using store::Cf;

namespace {

constexpr int64_t kHourMs = 3600 * 1000;
constexpr uint8_t kUserVersion = 1;
constexpr uint8_t kBucketVersion = 1;
constexpr size_t kMaxName = 64;
// The series of a query is dense (every hour, zeros included) up to this many points.
constexpr int64_t kMaxSeriesHours = 24 * 400;

int64_t HourOf(int64_t ms) {
  return ms >= 0 ? ms / kHourMs * kHourMs : (ms - kHourMs + 1) / kHourMs * kHourMs;
}

//! Names become key parts: bounded, without the separator.
std::string Name(std::string_view text, std::string_view fallback) {
  std::string out;
  for (char c : text.substr(0, kMaxName)) {
    if (c != '\0') out.push_back(c);
  }
  return out.empty() ? std::string(fallback) : out;
}

//! Native events carry a flat properties object; Snowplow self-describing events
//! {schema, data}: the fields are in data.
const json::object* Fields(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return nullptr;
  if (const auto* data = o->if_contains("data");
      data && data->is_object() && o->contains("schema")) {
    return &data->as_object();
  }
  return o;
}

std::string_view Str(const json::object* o, std::string_view key) {
  if (!o) return {};
  const auto* v = o->if_contains(key);
  return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

std::optional<double> Number(const json::object* o, std::string_view key) {
  if (!o) return std::nullopt;
  const auto* v = o->if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  if (v->is_string()) {
    std::string text(v->as_string());
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() && *end == '\0') return d;
  }
  return std::nullopt;
}

//! Revenue of a purchase event: `revenue`, else price x quantity (Snowplow ti_pr/ti_qu
//! for transaction items), else 0.
double RevenueOf(const json::object* p) {
  if (auto r = Number(p, "revenue")) return *r;
  auto price = Number(p, "price");
  if (!price) price = Number(p, "ti_pr");
  auto quantity = Number(p, "quantity");
  if (!quantity) quantity = Number(p, "ti_qu");
  return price ? *price * quantity.value_or(1) : 0;
}

void PutCounts(std::string& out, const Counts& c) {
  common::PutVarint(out, c.impressions);
  common::PutVarint(out, c.clicks);
  common::PutVarint(out, c.add_to_carts);
  common::PutVarint(out, c.purchases);
  common::PutFixed(out, c.revenue);
}

std::string EncodeBucket(const Bucket& b) {
  std::string out;
  out.push_back(static_cast<char>(kBucketVersion));
  for (const auto* s : {&b.tenant, &b.placement, &b.model, &b.variant}) common::PutString(out, *s);
  common::PutSigned(out, b.hour_ms);
  PutCounts(out, b.counts);
  return out;
}

common::Result<Bucket> DecodeBucket(std::string_view bytes) {
  common::ByteReader r(bytes);
  if (r.Byte() != kBucketVersion) return Status::Internal("kpi bucket: unknown version");
  Bucket b;
  for (auto* s : {&b.tenant, &b.placement, &b.model, &b.variant}) *s = r.String(4096);
  b.hour_ms = r.Signed();
  b.counts.impressions = r.Varint();
  b.counts.clicks = r.Varint();
  b.counts.add_to_carts = r.Varint();
  b.counts.purchases = r.Varint();
  b.counts.revenue = r.Fixed<double>();
  if (!r.ok() || !r.done()) return Status::Internal("kpi bucket: corrupt record");
  return b;
}

}  // namespace

Counts& Counts::operator+=(const Counts& o) {
  impressions += o.impressions;
  clicks += o.clicks;
  add_to_carts += o.add_to_carts;
  purchases += o.purchases;
  revenue += o.revenue;
  return *this;
}

std::optional<GroupBy> ParseGroupBy(std::string_view name) {
  if (name == "placement") return GroupBy::kPlacement;
  if (name == "model") return GroupBy::kModel;
  if (name == "variant") return GroupBy::kVariant;
  if (name == "none" || name.empty()) return GroupBy::kNone;
  return std::nullopt;
}

std::string_view GroupByName(GroupBy g) {
  switch (g) {
    case GroupBy::kPlacement:
      return "placement";
    case GroupBy::kModel:
      return "model";
    case GroupBy::kVariant:
      return "variant";
    case GroupBy::kNone:
      return "none";
  }
  return "none";
}

std::string EncodeUserKpiState(const UserKpiState& s) {
  std::string out;
  out.push_back(static_cast<char>(kUserVersion));
  common::PutSigned(out, s.last_ms);
  common::PutVarint(out, s.lists.size());
  for (const auto& l : s.lists) {
    for (const auto* f : {&l.list_id, &l.placement, &l.model, &l.variant})
      common::PutString(out, *f);
    common::PutSigned(out, l.shown_ms);
    out.push_back(l.impression ? 1 : 0);
    common::PutVarint(out, l.items.size());
    for (const auto& i : l.items) common::PutString(out, i);
    common::PutVarint(out, l.clicks.size());
    for (const auto& [item, ms] : l.clicks) {
      common::PutString(out, item);
      common::PutSigned(out, ms);
    }
  }
  common::PutVarint(out, s.recent.size());
  for (const auto& [id, key] : s.recent) {
    common::PutString(out, id);
    common::PutString(out, key);
  }
  return out;
}

common::Result<UserKpiState> DecodeUserKpiState(std::string_view bytes) {
  common::ByteReader r(bytes);
  if (r.Byte() != kUserVersion) return Status::Internal("kpi user state: unknown version");
  UserKpiState s;
  s.last_ms = r.Signed();
  size_t lists = r.Count();
  s.lists.resize(lists);
  for (auto& l : s.lists) {
    for (auto* f : {&l.list_id, &l.placement, &l.model, &l.variant}) *f = r.String(4096);
    l.shown_ms = r.Signed();
    l.impression = r.Byte() != 0;
    l.items.resize(r.Count());
    for (auto& i : l.items) i = r.String(4096);
    l.clicks.resize(r.Count());
    for (auto& [item, ms] : l.clicks) {
      item = r.String(4096);
      ms = r.Signed();
    }
  }
  s.recent.resize(r.Count());
  for (auto& [id, key] : s.recent) {
    id = r.String(4096);
    key = r.String(4096);
  }
  if (!r.ok() || !r.done()) return Status::Internal("kpi user state: corrupt record");
  return s;
}

KpiTracker::KpiTracker(store::Store& store, KpiOptions options)
    : store_(store), options_(std::move(options)) {}

KpiTracker::~KpiTracker() = default;

Status KpiTracker::Restore() {
  std::lock_guard lock(mu_);
  buckets_.clear();
  users_.clear();
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db(Cf::kState)->NewIterator({}, store_.cf(Cf::kState)));
  const rocksdb::Slice prefix(store::kKpiBucketPrefix.data(), store::kKpiBucketPrefix.size());
  size_t bad = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto b = DecodeBucket(std::string_view(it->value().data(), it->value().size()));
    if (!b.ok()) {
      ++bad;
      continue;
    }
    buckets_.emplace(it->key().ToString(), std::move(b).value());
  }
  if (bad > 0) spdlog::warn("kpi: skipped {} unreadable aggregate rows", bad);
  return store::FromRocks(it->status(), "read kpi aggregates");
}

pipeline::EventObserver KpiTracker::Observer() {
  return [this](const events::Event& e, const pipeline::UserState&, pipeline::StepWrites& w) {
    Observe(e, w);
  };
}

UserKpiState* KpiTracker::LoadUser(const std::string& key) {
  auto it = users_.find(key);
  if (it == users_.end()) {
    CachedUser cached;
    std::string bytes;
    auto s = store_.db(Cf::kState)->Get({}, store_.cf(Cf::kState), key, &bytes);
    if (s.ok()) {
      auto state = DecodeUserKpiState(bytes);
      if (state.ok()) {
        cached.state = std::move(state).value();
      } else {
        spdlog::warn("kpi: resetting unreadable user state: {}", state.status().message);
      }
    } else if (!s.IsNotFound()) {
      return nullptr;
    }
    if (users_.size() >= options_.max_cached_users) EvictUsers();
    it = users_.emplace(key, std::move(cached)).first;
  }
  it->second.touched = ++clock_;
  return &it->second.state;
}

void KpiTracker::EvictUsers() {
  // Drops the least recently touched quarter; their records are in the DB (or in a step
  // about to write them, which re-applies its events if it is retried).
  std::vector<uint64_t> ages;
  ages.reserve(users_.size());
  for (const auto& [k, u] : users_) ages.push_back(u.touched);
  auto nth = ages.begin() + static_cast<std::ptrdiff_t>(ages.size() / 4);
  std::nth_element(ages.begin(), nth, ages.end());
  const uint64_t cutoff = *nth;
  std::erase_if(users_, [cutoff](const auto& kv) { return kv.second.touched <= cutoff; });
}

void KpiTracker::PruneUser(UserKpiState& s, int64_t now_ms) const {
  const int64_t ttl = std::max(options_.cart_window_ms, options_.purchase_window_ms);
  std::erase_if(s.lists, [&](const ShownList& l) {
    int64_t last = l.shown_ms;
    for (const auto& c : l.clicks) last = std::max(last, c.second);
    return now_ms - last > ttl;
  });
  if (s.lists.size() > options_.max_lists_per_user) {
    s.lists.erase(s.lists.begin(),
                  s.lists.end() - static_cast<std::ptrdiff_t>(options_.max_lists_per_user));
  }
}

std::string KpiTracker::Add(const Bucket& where, const Counts& delta,
                            pipeline::StepWrites& writes) {
  std::string key = store::KpiBucketKey(where.tenant, where.placement, where.model, where.variant,
                                        static_cast<uint64_t>(where.hour_ms));
  auto [it, inserted] = buckets_.try_emplace(key, where);
  if (inserted) it->second.counts = {};
  it->second.counts += delta;
  writes.Put(key, EncodeBucket(it->second));
  return key;
}

void KpiTracker::Observe(const events::Event& e, pipeline::StepWrites& writes) {
  const bool shown = e.type == EventType::kImpression;
  const bool click = e.type == EventType::kClick;
  const bool cart = e.type == EventType::kAddToCart;
  const bool purchase = e.type == EventType::kPurchase;
  if ((!shown && !click && !cart && !purchase) || e.user_id.empty()) return;
  if ((cart || purchase) && e.item_id.empty()) return;  // nothing to attribute

  json::value props;
  if (!e.properties.empty()) {
    boost::system::error_code ec;
    props = json::parse(e.properties, ec);
    if (ec) props = nullptr;
  }
  const json::object* p = Fields(props);

  std::lock_guard lock(mu_);
  const std::string user_key = store::KpiUserKey(e.tenant, e.user_id);
  UserKpiState* s = LoadUser(user_key);
  if (!s) {
    spdlog::warn("kpi: cannot read the state of a user; event not counted");
    return;
  }
  // A retried step shows us events we already applied: write their results again.
  for (const auto& [id, key] : s->recent) {
    if (id != e.event_id) continue;
    if (auto b = buckets_.find(key); b != buckets_.end()) writes.Put(key, EncodeBucket(b->second));
    writes.Put(user_key, EncodeUserKpiState(*s));
    return;
  }
  if ((cart || purchase) && s->lists.empty()) return;  // cheap path: nothing was shown

  const int64_t t = e.timestamp_ms;
  PruneUser(*s, std::max(t, s->last_ms));
  Bucket where{e.tenant, {}, {}, {}, HourOf(t), {}};
  Counts delta;
  bool counted = false;

  auto find_list = [&](std::string_view id) -> ShownList* {
    for (auto& l : s->lists) {
      if (l.list_id == id) return &l;
    }
    return nullptr;
  };
  auto new_list = [&](std::string_view id) -> ShownList* {
    s->lists.push_back(ShownList{});
    ShownList* l = &s->lists.back();
    l->list_id = Name(id, "");
    l->placement = Name(Str(p, "placement"), "default");
    l->model = Name(Str(p, "model"), "unknown");
    l->variant = Name(Str(p, "variant"), "default");
    l->shown_ms = t;
    return l;
  };

  if (shown || click) {
    std::string_view list_id = Str(p, "list_id");
    ShownList* list = list_id.empty() ? nullptr : find_list(list_id);
    const bool repeated = shown && list && list->impression;  // the same list shown again
    if (!list) list = new_list(list_id);
    if (shown) {
      if (!list->impression) {
        list->impression = true;
        list->shown_ms = t;
      }
      if (const auto* items = p ? p->if_contains("items") : nullptr; items && items->is_array()) {
        for (const auto& v : items->as_array()) {
          if (list->items.size() >= options_.max_items_per_list) break;
          std::string id = v.is_string()   ? std::string(v.as_string())
                           : v.is_object() ? std::string(Str(&v.as_object(), "item_id"))
                                           : json::serialize(v);
          if (!id.empty() &&
              std::find(list->items.begin(), list->items.end(), id) == list->items.end()) {
            list->items.push_back(std::move(id));
          }
        }
      }
      delta.impressions = repeated ? 0 : 1;
    } else {
      if (!e.item_id.empty()) {
        list->clicks.emplace_back(e.item_id, t);
        if (list->clicks.size() > options_.max_clicks_per_list) {
          list->clicks.erase(list->clicks.begin());
        }
      }
      delta.clicks = 1;
    }
    where.placement = list->placement;
    where.model = list->model;
    where.variant = list->variant;
    counted = delta.impressions + delta.clicks > 0;
    // Lists without an id cannot be attributed later; keep only their counts.
    if (list_id.empty()) s->lists.pop_back();
  } else {
    const int64_t window = cart ? options_.cart_window_ms : options_.purchase_window_ms;
    auto in_window = [&](int64_t at) { return at <= t && t - at <= window; };
    const ShownList* best = nullptr;
    int64_t best_ms = INT64_MIN;
    for (const auto& l : s->lists) {  // a click on the item, the newest wins
      for (const auto& [item, ms] : l.clicks) {
        if (item == e.item_id && in_window(ms) && ms >= best_ms) {
          best = &l;
          best_ms = ms;
        }
      }
    }
    if (!best) {  // else a list that showed it, the newest wins
      for (const auto& l : s->lists) {
        if (l.impression && in_window(l.shown_ms) && l.shown_ms >= best_ms &&
            std::find(l.items.begin(), l.items.end(), e.item_id) != l.items.end()) {
          best = &l;
          best_ms = l.shown_ms;
        }
      }
    }
    if (best) {
      where.placement = best->placement;
      where.model = best->model;
      where.variant = best->variant;
      if (cart) {
        delta.add_to_carts = 1;
      } else {
        delta.purchases = 1;
        delta.revenue = RevenueOf(p);
      }
      counted = true;
    }
  }
  if (!counted && !shown && !click) return;  // nothing changed

  PruneUser(*s, std::max(t, s->last_ms));
  std::string bucket_key = counted ? Add(where, delta, writes) : std::string();
  if (!e.event_id.empty()) {
    s->recent.emplace_back(e.event_id, std::move(bucket_key));
    if (s->recent.size() > options_.recent_event_ids) s->recent.erase(s->recent.begin());
  }
  s->last_ms = std::max(s->last_ms, t);
  writes.Put(user_key, EncodeUserKpiState(*s));
}

std::vector<Bucket> KpiTracker::Buckets() const {
  std::lock_guard lock(mu_);
  std::vector<Bucket> out;
  out.reserve(buckets_.size());
  for (const auto& [k, b] : buckets_) out.push_back(b);
  std::sort(out.begin(), out.end(), [](const Bucket& a, const Bucket& b) {
    return std::tie(a.tenant, a.hour_ms, a.placement, a.model, a.variant) <
           std::tie(b.tenant, b.hour_ms, b.placement, b.model, b.variant);
  });
  return out;
}

KpiReport KpiTracker::Query(const KpiQuery& query) const {
  KpiReport report;
  report.query = query;
  const int64_t from = HourOf(query.from_ms);
  std::map<int64_t, Counts> series;
  std::map<std::string, std::pair<Counts, std::map<int64_t, Counts>>> groups;
  {
    std::lock_guard lock(mu_);
    for (const auto& [k, b] : buckets_) {
      if (b.tenant != query.tenant || b.hour_ms < from || b.hour_ms >= query.to_ms) continue;
      if (query.placement && b.placement != *query.placement) continue;
      const std::string& key = query.group_by == GroupBy::kPlacement ? b.placement
                               : query.group_by == GroupBy::kModel   ? b.model
                               : query.group_by == GroupBy::kVariant ? b.variant
                                                                     : std::string("all");
      auto& g = groups[key];
      g.first += b.counts;
      g.second[b.hour_ms] += b.counts;
      series[b.hour_ms] += b.counts;
      report.totals += b.counts;
    }
  }
  if ((query.to_ms - from) / kHourMs <= kMaxSeriesHours) {
    for (int64_t h = from; h < query.to_ms; h += kHourMs) series.try_emplace(h);
  }
  for (const auto& [h, c] : series) report.series.push_back({h, c});
  for (auto& [key, g] : groups) {
    KpiGroup out{key, g.first, {}};
    for (const auto& [h, c] : g.second) out.series.push_back({h, c});
    report.groups.push_back(std::move(out));
  }
  std::stable_sort(report.groups.begin(), report.groups.end(),
                   [](const KpiGroup& a, const KpiGroup& b) {
                     return a.totals.impressions > b.totals.impressions;
                   });
  return report;
}

common::Result<std::optional<UserKpiState>> KpiTracker::User(std::string_view tenant,
                                                             std::string_view user) {
  std::lock_guard lock(mu_);
  const std::string key = store::KpiUserKey(tenant, user);
  if (auto it = users_.find(key); it != users_.end()) {
    return std::optional<UserKpiState>(it->second.state);
  }
  std::string bytes;
  auto s = store_.db(Cf::kState)->Get({}, store_.cf(Cf::kState), key, &bytes);
  if (s.IsNotFound()) return std::optional<UserKpiState>();
  if (!s.ok()) return store::FromRocks(s, "read kpi user state");
  auto state = DecodeUserKpiState(bytes);
  if (!state.ok()) return state.status();
  return std::optional<UserKpiState>(std::move(state).value());
}

Status KpiTracker::ForgetUser(std::string_view tenant, std::string_view user) {
  std::lock_guard lock(mu_);
  const std::string key = store::KpiUserKey(tenant, user);
  users_.erase(key);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return store::FromRocks(store_.db(Cf::kState)->Delete(wo, store_.cf(Cf::kState), key),
                          "erase kpi user state");
}

Status KpiTracker::Trim(int64_t now_ms) {
  std::lock_guard lock(mu_);
  const int64_t cutoff = HourOf(now_ms - options_.retention_ms);
  rocksdb::WriteBatch wb;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (it->second.hour_ms < cutoff) {
      wb.Delete(store_.cf(Cf::kState), it->first);
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  if (wb.Count() == 0) return Status::Ok();
  return store::FromRocks(store_.db(Cf::kState)->Write({}, &wb), "trim kpi aggregates");
}

size_t KpiTracker::MemoryBytes() const {
  std::lock_guard lock(mu_);
  size_t bytes = 0;
  for (const auto& [k, b] : buckets_) {
    bytes += 2 * k.size() + sizeof(Bucket) + 64;
  }
  for (const auto& [k, u] : users_) {
    bytes += k.size() + sizeof(CachedUser) + 64;
    for (const auto& l : u.state.lists) {
      bytes += sizeof(ShownList) + l.list_id.size() + l.placement.size() + l.model.size() +
               l.variant.size();
      for (const auto& i : l.items) bytes += sizeof(std::string) + i.size();
      for (const auto& c : l.clicks) bytes += sizeof(c) + c.first.size();
    }
    for (const auto& r : u.state.recent) bytes += sizeof(r) + r.first.size() + r.second.size();
  }
  return bytes;
}

}  // namespace streamrec::kpi
