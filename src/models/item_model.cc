#include "models/item_model.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "common/string_hash.h"
#include "models/item_codec.h"

namespace streamrec::models {
namespace {

constexpr double kViewWeight = 1;
constexpr double kCartWeight = 3;
constexpr double kPurchaseWeight = 5;
// Carts and purchases are stronger evidence that two items go together.
constexpr double kStrongCovisBoost = 2;
constexpr double kEvictFraction = 0.05;
constexpr size_t kEvictedCap = 4;  //!< deletions remembered between checkpoints, x max_items
// Forward decay: renormalise once scores have grown by 2^64, long before doubles overflow.
constexpr double kRenormaliseHalfLives = 64;
// Bounds the co-visitation work of one event whatever window the caller passes.
constexpr size_t kMaxWindow = 64;

//! Per-thread scratch for Recommend: dense score and mark arrays indexed by slot, reset
//! in O(1) by bumping a generation, so scoring allocates and hashes nothing per call.
struct ScoreScratch {
  std::vector<double> score;
  std::vector<uint32_t> scored;   //!< == generation: score[slot] is live
  std::vector<uint32_t> blocked;  //!< == generation: slot is excluded
  std::vector<uint32_t> touched;
  uint32_t generation = 0;

  void Begin(size_t slots) {
    if (score.size() < slots) {
      score.resize(slots);
      scored.resize(slots, 0);
      blocked.resize(slots, 0);
    }
    touched.clear();
    if (++generation == 0) {  // wrapped: stale marks could look live
      std::fill(scored.begin(), scored.end(), 0);
      std::fill(blocked.begin(), blocked.end(), 0);
      generation = 1;
    }
  }
  void Block(uint32_t slot) { blocked[slot] = generation; }
  bool IsBlocked(uint32_t slot) const { return blocked[slot] == generation; }
  void Add(uint32_t slot, double v) {
    if (scored[slot] != generation) {
      scored[slot] = generation;
      score[slot] = 0;
      touched.push_back(slot);
    }
    score[slot] += v;
  }
};
constexpr size_t kMinCachedPopular = 100;
constexpr uint32_t kFreeTenant = UINT32_MAX;
// Fill-from-popularity scores stay strictly below the weakest co-visitation score.
constexpr double kFillScoreCeiling = 0.99;
constexpr double kFillScoreFloor = 1e-6;

struct Neighbor {
  uint32_t item;
  float weight;
};

// 64 bytes per item plus its neighbour list and its index entry.
struct Slot {
  const std::string* key = nullptr;  //!< the index_ key (tenant prefix + id); null: free slot
  uint32_t tenant = kFreeTenant;
  uint32_t views = 0, add_to_carts = 0, purchases = 0;
  int64_t last_seen_ms = 0;
  double pop = 0;  //!< forward-decayed: sum of weight * 2^((t - t0) / half_life)
  std::vector<Neighbor> neighbors;
};

using common::StringHash;
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

// Index keys are the tenant's dense index (4 raw bytes) followed by the item id, so one
// string per item serves as both the hash key and the id table.
std::string MakeKey(uint32_t tenant, std::string_view item) {
  std::string key(sizeof(tenant) + item.size(), '\0');
  std::memcpy(key.data(), &tenant, sizeof(tenant));
  std::memcpy(key.data() + sizeof(tenant), item.data(), item.size());
  return key;
}
std::string_view KeyItem(const std::string& key) {
  return std::string_view(key).substr(sizeof(uint32_t));
}

uint32_t SaturatingAdd(uint32_t a, uint32_t b) { return a > UINT32_MAX - b ? UINT32_MAX : a + b; }
uint32_t Saturate(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v); }

size_t HeapBytes(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;  // libstdc++ SSO holds 15 chars
}

// Hash-node overhead of an unordered container entry beyond the value itself.
constexpr size_t kNodeOverhead = 2 * sizeof(void*);

struct TopCache {
  std::vector<uint32_t> items;  //!< slots, best first
  uint64_t generation = UINT64_MAX;
  int64_t built_wall_ms = INT64_MIN;
  bool complete = false;  //!< holds every item of its scope
};

}  // namespace

// The slots changed since the last checkpoint. Observe marks a few per event, so marking is a
// byte test and (the first time) an append, not a hash-set insert.
class DirtySlots {
 public:
  void insert(uint32_t slot) {
    if (slot >= state_.size()) state_.resize(slot + 1, kClean);
    if (state_[slot] == kDirty) return;
    if (state_[slot] == kClean) listed_.push_back(slot);
    state_[slot] = kDirty;
    ++count_;
  }
  void erase(uint32_t slot) {  // its entry in listed_ stays, skipped until clear()
    if (slot < state_.size() && state_[slot] == kDirty) {
      state_[slot] = kErased;
      --count_;
    }
  }
  size_t size() const { return count_; }
  template <typename F>
  void ForEach(F&& f) const {
    for (uint32_t slot : listed_) {
      if (state_[slot] == kDirty) f(slot);
    }
  }
  void clear() {
    for (uint32_t slot : listed_) state_[slot] = kClean;
    listed_.clear();
    count_ = 0;
  }
  size_t bytes() const { return state_.capacity() + listed_.capacity() * sizeof(uint32_t); }

 private:
  enum : uint8_t { kClean, kDirty, kErased };  // kErased: listed, no longer dirty
  std::vector<uint8_t> state_;                 // by slot
  std::vector<uint32_t> listed_;               // every slot not kClean, once
  size_t count_ = 0;
};

struct ItemModel::Impl {
  explicit Impl(ItemModelOptions o) : options(o) {
    if (options.max_items == 0) options.max_items = 1;
    if (options.max_neighbors == 0) options.max_neighbors = 1;
    if (options.popularity_half_life_ms <= 0) options.popularity_half_life_ms = 1;
  }

  ItemModelOptions options;
  mutable std::shared_mutex mu;

  // --- guarded by mu
  std::vector<std::string> tenant_names;
  StringMap<uint32_t> tenant_index;
  std::vector<uint64_t> tenant_generation;  //!< bumped on every popularity change
  uint64_t global_generation = 0;
  StringMap<uint32_t> index;  //!< MakeKey(tenant, item) -> slot
  std::vector<Slot> slots;
  std::vector<uint32_t> free_slots;
  bool snapshot_active = false;  //!< a DirtySnapshot is being encoded (eviction held off)
  size_t live = 0;
  bool clock_started = false;
  int64_t now_ms = 0;
  int64_t t0_ms = 0;  //!< forward-decay landmark
  DirtySlots dirty;
  StringSet evicted;             //!< keys evicted since the last TakeDirty
  size_t neighbor_capacity = 0;  //!< sum of neighbour vector capacities
  size_t key_heap_bytes = 0;

  // --- Popular() caches: filled under a shared lock of mu, so they have their own mutex.
  mutable std::mutex cache_mu;
  mutable TopCache global_cache;
  mutable std::unordered_map<uint32_t, TopCache> tenant_caches;

  double Scale() const {
    return std::exp2(static_cast<double>(t0_ms - now_ms) /
                     static_cast<double>(options.popularity_half_life_ms));
  }
  double Forward(int64_t t) const {
    return std::exp2(static_cast<double>(t - t0_ms) /
                     static_cast<double>(options.popularity_half_life_ms));
  }

  void AdvanceClock(int64_t t) {
    if (!clock_started) {
      clock_started = true;
      now_ms = t0_ms = t;
      return;
    }
    now_ms = std::max(now_ms, t);
    double half_lives =
        static_cast<double>(now_ms - t0_ms) / static_cast<double>(options.popularity_half_life_ms);
    if (half_lives > kRenormaliseHalfLives) {
      double scale = Scale();
      for (auto& s : slots) s.pop *= scale;
      t0_ms = now_ms;
    }
  }

  std::optional<uint32_t> FindTenant(std::string_view tenant) const {
    auto it = tenant_index.find(tenant);
    if (it == tenant_index.end()) return std::nullopt;
    return it->second;
  }

  uint32_t InternTenant(std::string_view tenant) {
    if (auto t = FindTenant(tenant)) return *t;
    auto t = static_cast<uint32_t>(tenant_names.size());
    tenant_names.emplace_back(tenant);
    tenant_index.emplace(std::string(tenant), t);
    tenant_generation.push_back(0);
    return t;
  }

  std::optional<uint32_t> Find(uint32_t tenant, std::string_view item) const {
    auto it = index.find(MakeKey(tenant, item));
    if (it == index.end()) return std::nullopt;
    return it->second;
  }
  std::optional<uint32_t> Find(std::string_view tenant, std::string_view item) const {
    auto t = FindTenant(tenant);
    return t ? Find(*t, item) : std::nullopt;
  }

  uint32_t Intern(uint32_t tenant, std::string_view item) {
    std::string key = MakeKey(tenant, item);
    if (auto it = index.find(key); it != index.end()) return it->second;
    uint32_t slot;
    if (!free_slots.empty()) {
      slot = free_slots.back();
      free_slots.pop_back();
    } else {
      slot = static_cast<uint32_t>(slots.size());
      slots.emplace_back();
    }
    // An item evicted and seen again before the checkpoint: save it afresh instead.
    if (auto e = evicted.find(key); e != evicted.end()) {
      evicted.erase(e);
      dirty.insert(slot);
    }
    auto [it, inserted] = index.emplace(std::move(key), slot);
    key_heap_bytes += HeapBytes(it->first);
    Slot& s = slots[slot];
    s.key = &it->first;
    s.tenant = tenant;
    ++live;
    return slot;
  }

  std::string_view ItemId(uint32_t slot) const { return KeyItem(*slots[slot].key); }

  void TouchPopularity(uint32_t tenant) {
    ++tenant_generation[tenant];
    ++global_generation;
  }

  void AddNeighbor(uint32_t from, uint32_t to, double weight) {
    auto& list = slots[from].neighbors;
    for (auto& n : list) {
      if (n.item == to) {
        n.weight += static_cast<float>(weight);
        return;
      }
    }
    size_t before = list.capacity();
    size_t hard_cap = 2 * options.max_neighbors + 1;
    if (list.size() == list.capacity()) {
      // Grow by doubling but never past the hard cap, so a full list costs ~2*max entries.
      list.reserve(std::min(hard_cap, std::max<size_t>(4, 2 * list.capacity())));
    }
    list.push_back({to, static_cast<float>(weight)});
    if (list.size() > 2 * options.max_neighbors) Prune(list, options.max_neighbors);
    neighbor_capacity += list.capacity() - before;
  }

  static void Prune(std::vector<Neighbor>& list, size_t keep) {
    if (list.size() <= keep) return;
    std::nth_element(list.begin(), list.begin() + static_cast<ptrdiff_t>(keep), list.end(),
                     [](const Neighbor& a, const Neighbor& b) { return a.weight > b.weight; });
    list.resize(keep);
  }

  // Best first: higher score, then higher popularity, then item id (stable across runs,
  // unlike slot numbers).
  bool Better(double score_a, uint32_t a, double score_b, uint32_t b) const {
    if (score_a != score_b) return score_a > score_b;
    if (slots[a].pop != slots[b].pop) return slots[a].pop > slots[b].pop;
    return ItemId(a) < ItemId(b);
  }

  void MaybeEvict(uint32_t protect) {
    // While a checkpoint encodes its snapshot, slots must keep their items: evict later.
    if (live <= options.max_items || snapshot_active) return;
    size_t batch = std::max<size_t>(1, static_cast<size_t>(options.max_items * kEvictFraction));
    size_t count = std::min(live - options.max_items + batch, live - 1);
    std::vector<uint32_t> candidates;
    candidates.reserve(live);
    for (uint32_t i = 0; i < slots.size(); ++i) {
      if (slots[i].key && i != protect) candidates.push_back(i);
    }
    count = std::min(count, candidates.size());
    auto worse = [&](uint32_t a, uint32_t b) {
      if (slots[a].pop != slots[b].pop) return slots[a].pop < slots[b].pop;
      return slots[a].last_seen_ms < slots[b].last_seen_ms;
    };
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(count),
                     candidates.end(), worse);
    std::vector<bool> gone(slots.size(), false);
    for (size_t k = 0; k < count; ++k) gone[candidates[k]] = true;

    // NOTE: slots are reused, so edges to evicted items are dropped now rather than lazily:
    // a stale edge would otherwise silently point at whichever item takes the slot next.
    // One sweep per ~5% of max_items new items keeps this O(max_neighbors) amortised.
    for (uint32_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (!s.key || gone[i]) continue;
      size_t removed = std::erase_if(s.neighbors, [&](const Neighbor& n) { return gone[n.item]; });
      if (removed) dirty.insert(i);
    }
    for (size_t k = 0; k < count; ++k) {
      uint32_t i = candidates[k];
      Slot& s = slots[i];
      std::string key = *s.key;
      key_heap_bytes -= HeapBytes(key);
      neighbor_capacity -= s.neighbors.capacity();
      TouchPopularity(s.tenant);
      index.erase(key);
      dirty.erase(i);
      // Deletions are remembered until the next checkpoint; beyond kEvictedCap * max_items
      // of them the checkpoint keeps some stale items, which are evicted again after a restart.
      if (evicted.size() < kEvictedCap * options.max_items) evicted.insert(std::move(key));
      s = Slot{};
      free_slots.push_back(i);
      --live;
    }
    std::lock_guard cache_lock(cache_mu);
    global_cache = TopCache{};
    tenant_caches.clear();
  }

  // Slots of the most popular items (of a tenant, or all), best first, at least `want` of
  // them when the scope has that many. REQUIRES: mu held (shared is enough).
  std::vector<uint32_t> PopularSlots(std::optional<uint32_t> tenant, size_t want) const {
    std::lock_guard lock(cache_mu);
    TopCache& cache = tenant ? tenant_caches[*tenant] : global_cache;
    uint64_t generation = tenant ? tenant_generation[*tenant] : global_generation;
    int64_t wall = common::NowMs();
    bool too_short = cache.items.size() < want && !cache.complete;
    bool stale = cache.generation != generation &&
                 (cache.built_wall_ms == INT64_MIN ||
                  wall - cache.built_wall_ms >= options.popular_refresh_ms);
    if (too_short || stale) {
      std::vector<uint32_t> all;
      for (uint32_t i = 0; i < slots.size(); ++i) {
        if (slots[i].key && (!tenant || slots[i].tenant == *tenant)) all.push_back(i);
      }
      size_t keep = std::min(all.size(), std::max(kMinCachedPopular, 2 * want));
      std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(keep), all.end(),
                        [&](uint32_t a, uint32_t b) { return Better(0, a, 0, b); });
      cache.complete = keep == all.size();
      all.resize(keep);
      cache.items = std::move(all);
      cache.generation = generation;
      cache.built_wall_ms = wall;
    }
    return cache.items;
  }

  internal::ItemRecord ToRecord(uint32_t i) const {
    const Slot& s = slots[i];
    internal::ItemRecord rec;
    rec.views = s.views;
    rec.add_to_carts = s.add_to_carts;
    rec.purchases = s.purchases;
    rec.last_seen_ms = s.last_seen_ms;
    rec.popularity = s.pop * Scale();
    rec.as_of_ms = now_ms;
    std::vector<Neighbor> sorted = s.neighbors;
    std::sort(sorted.begin(), sorted.end(),
              [](const Neighbor& a, const Neighbor& b) { return a.weight > b.weight; });
    rec.neighbors.reserve(sorted.size());
    for (const auto& n : sorted) rec.neighbors.push_back({std::string(ItemId(n.item)), n.weight});
    return rec;
  }
};

ItemModel::ItemModel(ItemModelOptions options) : impl_(std::make_unique<Impl>(options)) {}
ItemModel::~ItemModel() = default;

void ItemModel::Observe(const events::Event& event, std::span<const WindowItem> window_before) {
  double weight;
  switch (event.type) {
    case events::EventType::kView:
      weight = kViewWeight;
      break;
    case events::EventType::kAddToCart:
      weight = kCartWeight;
      break;
    case events::EventType::kPurchase:
      weight = kPurchaseWeight;
      break;
    default:
      weight = 0;
      break;
  }
  std::unique_lock lock(impl_->mu);
  Impl& m = *impl_;
  m.AdvanceClock(event.timestamp_ms);
  if (event.item_id.empty() || weight == 0) return;

  uint32_t tenant = m.InternTenant(event.tenant);
  uint32_t j = m.Intern(tenant, event.item_id);
  {
    Slot& s = m.slots[j];
    switch (event.type) {
      case events::EventType::kView:
        s.views = SaturatingAdd(s.views, 1);
        break;
      case events::EventType::kAddToCart:
        s.add_to_carts = SaturatingAdd(s.add_to_carts, 1);
        break;
      default:
        s.purchases = SaturatingAdd(s.purchases, 1);
        break;
    }
    s.last_seen_ms = std::max(s.last_seen_ms, event.timestamp_ms);
    s.pop += weight * m.Forward(event.timestamp_ms);
  }
  m.TouchPopularity(tenant);
  m.dirty.insert(j);

  double boost = event.type == events::EventType::kView ? 1.0 : kStrongCovisBoost;
  size_t n = std::min(window_before.size(), kMaxWindow);
  std::vector<std::string_view> seen;
  seen.reserve(n);
  double w = boost;
  for (size_t d = 0; d < n; ++d, w *= m.options.recency_decay) {
    const std::string& id = window_before[window_before.size() - 1 - d].item_id;
    if (id.empty() || id == event.item_id) continue;
    if (std::find(seen.begin(), seen.end(), id) != seen.end()) continue;  // closest counts
    seen.push_back(id);
    uint32_t i = m.Intern(tenant, id);
    m.AddNeighbor(i, j, w);
    m.AddNeighbor(j, i, w);
    m.dirty.insert(i);
  }
  m.MaybeEvict(j);
}

std::vector<ScoredItem> ItemModel::Similar(std::string_view tenant, std::string_view item,
                                           size_t n) const {
  std::shared_lock lock(impl_->mu);
  const Impl& m = *impl_;
  auto slot = m.Find(tenant, item);
  if (!slot) return {};
  std::vector<Neighbor> list = m.slots[*slot].neighbors;
  auto better = [&](const Neighbor& a, const Neighbor& b) {
    return m.Better(a.weight, a.item, b.weight, b.item);
  };
  size_t keep = std::min(n, list.size());
  std::partial_sort(list.begin(), list.begin() + static_cast<ptrdiff_t>(keep), list.end(), better);
  std::vector<ScoredItem> out;
  out.reserve(keep);
  for (size_t k = 0; k < keep; ++k) {
    out.push_back({std::string(m.ItemId(list[k].item)), list[k].weight});
  }
  return out;
}

std::vector<ScoredItem> ItemModel::Popular(std::string_view tenant, size_t n,
                                           std::span<const std::string> exclude) const {
  std::shared_lock lock(impl_->mu);
  const Impl& m = *impl_;
  std::optional<uint32_t> t;
  if (!tenant.empty()) {
    t = m.FindTenant(tenant);
    if (!t) return {};
  }
  std::vector<ScoredItem> out;
  if (n == 0) return out;
  double scale = m.Scale();
  for (uint32_t slot : m.PopularSlots(t, n + exclude.size())) {
    std::string_view id = m.ItemId(slot);
    if (std::find(exclude.begin(), exclude.end(), id) != exclude.end()) continue;
    out.push_back({std::string(id), m.slots[slot].pop * scale});
    if (out.size() == n) break;
  }
  return out;
}

Recommendation ItemModel::Recommend(std::string_view tenant, std::span<const WindowItem> window,
                                    size_t n, std::span<const std::string> exclude) const {
  std::shared_lock lock(impl_->mu);
  const Impl& m = *impl_;
  Recommendation rec;
  rec.model = "popularity";
  auto t = m.FindTenant(tenant);
  if (!t || n == 0) return rec;

  thread_local ScoreScratch scratch;
  scratch.Begin(m.slots.size());
  for (const auto& id : exclude) {
    if (auto s = m.Find(*t, id)) scratch.Block(*s);
  }
  // Window items newest first, each once at its most recent position.
  std::vector<uint32_t> sources;
  size_t limit = std::min(window.size(), kMaxWindow);
  for (size_t k = 0; k < limit; ++k) {
    auto s = m.Find(*t, window[window.size() - 1 - k].item_id);
    if (!s || scratch.IsBlocked(*s)) continue;
    scratch.Block(*s);
    sources.push_back(*s);
  }

  double w = 1;
  for (uint32_t src : sources) {
    const auto& list = m.slots[src].neighbors;
    float max_weight = 0;
    for (const auto& nb : list) max_weight = std::max(max_weight, nb.weight);
    if (max_weight > 0) {
      for (const auto& nb : list) {
        if (!scratch.IsBlocked(nb.item)) scratch.Add(nb.item, w * nb.weight / max_weight);
      }
    }
    w *= m.options.recency_decay;
  }
  std::vector<std::pair<double, uint32_t>> ranked;
  ranked.reserve(scratch.touched.size());
  for (uint32_t slot : scratch.touched) ranked.emplace_back(scratch.score[slot], slot);
  size_t keep = std::min(n, ranked.size());
  std::partial_sort(
      ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(keep), ranked.end(),
      [&](const auto& a, const auto& b) { return m.Better(a.first, a.second, b.first, b.second); });
  rec.items.reserve(n);
  for (size_t k = 0; k < keep; ++k) {
    rec.items.push_back({std::string(m.ItemId(ranked[k].second)), ranked[k].first});
    scratch.Block(ranked[k].second);
  }
  if (keep > 0) rec.model = "covisitation";
  if (rec.items.size() == n) return rec;

  double ceiling = rec.items.empty() ? 1.0 : rec.items.back().score;
  double top_pop = -1;
  for (uint32_t slot : m.PopularSlots(*t, 2 * n + exclude.size() + sources.size())) {
    if (scratch.IsBlocked(slot)) continue;
    double pop = m.slots[slot].pop;
    if (top_pop < 0) top_pop = pop;
    double ratio = top_pop > 0 ? pop / top_pop : 0;
    double score = ceiling * kFillScoreCeiling * std::max(ratio, kFillScoreFloor);
    rec.items.push_back({std::string(m.ItemId(slot)), score});
    if (rec.items.size() == n) break;
  }
  return rec;
}

std::optional<ItemStats> ItemModel::Stats(std::string_view tenant, std::string_view item) const {
  std::shared_lock lock(impl_->mu);
  const Impl& m = *impl_;
  auto slot = m.Find(tenant, item);
  if (!slot) return std::nullopt;
  const Slot& s = m.slots[*slot];
  ItemStats stats;
  stats.views = s.views;
  stats.add_to_carts = s.add_to_carts;
  stats.purchases = s.purchases;
  stats.last_seen_ms = s.last_seen_ms;
  stats.popularity = s.pop * m.Scale();
  return stats;
}

size_t ItemModel::item_count() const {
  std::shared_lock lock(impl_->mu);
  return impl_->live;
}

int64_t ItemModel::now_ms() const {
  std::shared_lock lock(impl_->mu);
  return impl_->now_ms;
}

uint64_t ItemModel::ApproximateBytes() const {
  std::shared_lock lock(impl_->mu);
  const Impl& m = *impl_;
  uint64_t bytes = sizeof(Impl);
  bytes += m.slots.capacity() * sizeof(Slot);
  bytes += m.neighbor_capacity * sizeof(Neighbor);
  bytes += m.free_slots.capacity() * sizeof(uint32_t);
  // Index: one node per item (key string + slot + hash links) plus the bucket array.
  bytes +=
      m.index.size() * (sizeof(std::string) + sizeof(uint32_t) + sizeof(size_t) + kNodeOverhead) +
      m.key_heap_bytes + m.index.bucket_count() * sizeof(void*);
  bytes += m.dirty.bytes();
  for (const auto& key : m.evicted) {
    bytes += sizeof(std::string) + HeapBytes(key) + kNodeOverhead + sizeof(size_t);
  }
  bytes += m.evicted.bucket_count() * sizeof(void*);
  for (const auto& name : m.tenant_names) {
    bytes += 2 * (sizeof(std::string) + HeapBytes(name)) + kNodeOverhead + sizeof(uint64_t);
  }
  std::lock_guard cache_lock(m.cache_mu);
  bytes += m.global_cache.items.capacity() * sizeof(uint32_t);
  for (const auto& [t, cache] : m.tenant_caches) {
    bytes += sizeof(TopCache) + kNodeOverhead + cache.items.capacity() * sizeof(uint32_t);
  }
  return bytes;
}

struct ItemModel::DirtySnapshot {
  struct Item {
    uint32_t slot;
    internal::ItemRecord record;  //!< neighbours' ids filled in by Finish
    size_t begin, end;            //!< its neighbours in `neighbors`
  };
  std::vector<Item> items;
  std::vector<Neighbor> neighbors;  //!< one flat copy: one allocation, not one per item
  std::vector<DirtyItem> evicted;
};

void ItemModel::DirtySnapshotDeleter::operator()(DirtySnapshot* snapshot) const { delete snapshot; }

ItemModel::DirtySnapshotPtr ItemModel::BeginDirtySnapshot() {
  std::unique_lock lock(impl_->mu);
  Impl& m = *impl_;
  DirtySnapshotPtr snapshot(new DirtySnapshot());
  snapshot->items.reserve(m.dirty.size());
  size_t total = 0;
  m.dirty.ForEach([&](uint32_t slot) { total += m.slots[slot].neighbors.size(); });
  snapshot->neighbors.reserve(total);
  m.dirty.ForEach([&](uint32_t slot) {
    const Slot& s = m.slots[slot];
    auto& flat = snapshot->neighbors;
    DirtySnapshot::Item item{slot, {}, flat.size(), flat.size() + s.neighbors.size()};
    flat.insert(flat.end(), s.neighbors.begin(), s.neighbors.end());
    item.record.views = s.views;
    item.record.add_to_carts = s.add_to_carts;
    item.record.purchases = s.purchases;
    item.record.last_seen_ms = s.last_seen_ms;
    item.record.popularity = s.pop * m.Scale();
    item.record.as_of_ms = m.now_ms;
    snapshot->items.push_back(std::move(item));
  });
  for (const auto& key : m.evicted) {
    uint32_t tenant;
    std::memcpy(&tenant, key.data(), sizeof(tenant));
    snapshot->evicted.push_back({m.tenant_names[tenant], std::string(KeyItem(key)), std::nullopt});
  }
  m.dirty.clear();
  m.evicted.clear();
  m.snapshot_active = true;
  return snapshot;
}

std::vector<ItemModel::DirtyItem> ItemModel::FinishDirtySnapshot(DirtySnapshotPtr snapshot) {
  constexpr size_t kChunk = 256;  // items encoded per shared-lock hold
  std::vector<DirtyItem> out;
  out.reserve(snapshot->items.size() + snapshot->evicted.size());
  for (size_t begin = 0; begin < snapshot->items.size(); begin += kChunk) {
    // Let a waiting Observe in between chunks: shared_mutex favours readers, so
    // back-to-back shared holds would starve the pipeline's writers.
    if (begin > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::shared_lock lock(impl_->mu);
    const Impl& m = *impl_;
    size_t end = std::min(begin + kChunk, snapshot->items.size());
    for (size_t k = begin; k < end; ++k) {
      auto& item = snapshot->items[k];
      auto first = snapshot->neighbors.begin() + static_cast<ptrdiff_t>(item.begin);
      auto last = snapshot->neighbors.begin() + static_cast<ptrdiff_t>(item.end);
      std::sort(first, last,
                [](const Neighbor& a, const Neighbor& b) { return a.weight > b.weight; });
      item.record.neighbors.reserve(item.end - item.begin);
      for (auto n = first; n != last; ++n) {
        item.record.neighbors.push_back({std::string(m.ItemId(n->item)), n->weight});
      }
      out.push_back({m.tenant_names[m.slots[item.slot].tenant], std::string(m.ItemId(item.slot)),
                     internal::EncodeItemRecord(item.record)});
    }
  }
  for (auto& e : snapshot->evicted) out.push_back(std::move(e));
  std::unique_lock lock(impl_->mu);
  impl_->snapshot_active = false;
  return out;
}

std::vector<ItemModel::DirtyItem> ItemModel::TakeDirty() {
  return FinishDirtySnapshot(BeginDirtySnapshot());
}

common::Status ItemModel::Restore(std::string_view tenant, std::string_view item,
                                  std::string_view bytes) {
  if (tenant.empty()) return common::Status::Invalid("missing_tenant", "tenant is empty", "tenant");
  if (item.empty()) return common::Status::Invalid("missing_item", "item is empty", "item");
  auto decoded = internal::DecodeItemRecord(bytes);
  if (!decoded) return decoded.status();
  const internal::ItemRecord& rec = *decoded;

  std::unique_lock lock(impl_->mu);
  Impl& m = *impl_;
  m.AdvanceClock(rec.as_of_ms);
  uint32_t t = m.InternTenant(tenant);
  uint32_t slot = m.Intern(t, item);
  {
    Slot& s = m.slots[slot];
    s.views = Saturate(rec.views);
    s.add_to_carts = Saturate(rec.add_to_carts);
    s.purchases = Saturate(rec.purchases);
    s.last_seen_ms = rec.last_seen_ms;
    s.pop = rec.popularity * m.Forward(rec.as_of_ms);
    m.neighbor_capacity -= s.neighbors.capacity();
    s.neighbors.clear();
  }
  std::vector<Neighbor> list;
  list.reserve(std::min(rec.neighbors.size(), m.options.max_neighbors));
  for (const auto& nb : rec.neighbors) {
    if (nb.item_id.empty() || nb.item_id == item || !(nb.weight > 0)) continue;
    uint32_t other = m.Intern(t, nb.item_id);  // may add a slot: take the reference after
    if (std::none_of(list.begin(), list.end(),
                     [&](const Neighbor& n) { return n.item == other; })) {
      list.push_back({other, nb.weight});
    }
  }
  Impl::Prune(list, m.options.max_neighbors);
  m.neighbor_capacity += list.capacity();
  m.slots[slot].neighbors = std::move(list);
  m.TouchPopularity(t);
  m.MaybeEvict(slot);
  return common::Status::Ok();
}

void KeepBest(std::vector<ScoredItem>& items, size_t n) {
  const size_t keep = std::min(n, items.size());
  std::partial_sort(items.begin(), items.begin() + static_cast<ptrdiff_t>(keep), items.end(),
                    [](const ScoredItem& a, const ScoredItem& b) {
                      return a.score != b.score ? a.score > b.score : a.item_id < b.item_id;
                    });
  items.resize(keep);
}

}  // namespace streamrec::models
