#include "catalog/catalog.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <cmath>
#include <list>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "common/byte_codec.h"
#include "common/clock.h"

namespace streamrec::catalog {

using common::Status;
using store::Cf;

namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr size_t kShards = 16;

// Key tags inside kCatalog (see store/key_schema.h).
constexpr char kItemTag = 'i';
constexpr char kHandleTag = 'h';
constexpr char kShopifyTag = 's';
constexpr char kCountTag = 'n';

void AppendKey(std::string& out, char tag, std::string_view tenant, std::string_view rest) {
  out.clear();
  out.push_back(tag);
  out.append(tenant);
  out.push_back('\0');
  out.append(rest);
}

std::string Key(char tag, std::string_view tenant, std::string_view rest) {
  std::string k;
  k.reserve(2 + tenant.size() + rest.size());
  AppendKey(k, tag, tenant, rest);
  return k;
}

std::string CountKey(std::string_view tenant) {
  std::string k(1, kCountTag);
  k.append(tenant);
  return k;
}

Status CheckKeyPart(std::string_view value, std::string_view field, size_t max, bool required) {
  if (value.empty()) {
    if (required)
      return Status::Invalid("missing_field", std::string(field) + " is required",
                             std::string(field));
    return Status::Ok();
  }
  if (value.size() > max) {
    return Status::Invalid("invalid_field",
                           std::string(field) + " is longer than " + std::to_string(max) + " bytes",
                           std::string(field));
  }
  if (value.find('\0') != std::string_view::npos) {
    return Status::Invalid("invalid_field", std::string(field) + " contains a NUL byte",
                           std::string(field));
  }
  return Status::Ok();
}

std::string Field(std::string_view where, std::string_view name) {
  std::string f(where);
  if (!f.empty()) f.push_back('.');
  f.append(name);
  return f;
}

}  // namespace

std::string EncodeItem(const Item& item) {
  std::string out;
  out.reserve(64 + item.title.size() + item.url.size() + item.image_url.size());
  out.push_back(static_cast<char>(kRecordVersion));
  common::PutString(out, item.handle);
  common::PutString(out, item.title);
  common::PutString(out, item.url);
  common::PutString(out, item.image_url);
  common::PutFixed(out, item.price);
  common::PutString(out, item.currency);
  common::PutVarint(out, item.categories.size());
  for (const auto& c : item.categories) common::PutString(out, c);
  common::PutVarint(out, item.tags.size());
  for (const auto& t : item.tags) common::PutString(out, t);
  out.push_back(static_cast<char>((item.available ? 1 : 0) | (item.published ? 2 : 0)));
  common::PutString(out, item.shopify_id);
  common::PutSigned(out, item.updated_ms);
  return out;
}

common::Result<Item> DecodeItem(std::string_view tenant, std::string_view id,
                                std::string_view bytes) {
  common::ByteReader r(bytes);
  if (r.Byte() != kRecordVersion) {
    return Status::Internal("catalog item " + std::string(id) + ": unknown record version");
  }
  Item item;
  item.tenant = tenant;
  item.id = id;
  item.handle = r.String();
  item.title = r.String();
  item.url = r.String();
  item.image_url = r.String();
  item.price = r.Fixed<double>();
  item.currency = r.String();
  size_t n = r.Count();
  item.categories.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) item.categories.push_back(r.String());
  n = r.Count();
  item.tags.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) item.tags.push_back(r.String());
  uint8_t flags = r.Byte();
  item.available = flags & 1;
  item.published = flags & 2;
  item.shopify_id = r.String();
  item.updated_ms = r.Signed();
  if (!r.ok() || !r.done()) {
    return Status::Internal("catalog item " + std::string(id) + ": corrupt record");
  }
  return item;
}

Status ValidateItem(const Item& item, std::string_view where) {
  if (auto s = CheckKeyPart(item.tenant, Field(where, "tenant"), kMaxIdBytes, true); !s.ok()) {
    return s;
  }
  if (auto s = CheckKeyPart(item.id, Field(where, "id"), kMaxIdBytes, true); !s.ok()) return s;
  if (auto s = CheckKeyPart(item.handle, Field(where, "handle"), kMaxIdBytes, false); !s.ok()) {
    return s;
  }
  if (auto s = CheckKeyPart(item.shopify_id, Field(where, "shopify_id"), kMaxIdBytes, false);
      !s.ok()) {
    return s;
  }
  for (auto [value, name] : {std::pair<const std::string*, const char*>{&item.title, "title"},
                             {&item.url, "url"},
                             {&item.image_url, "image_url"},
                             {&item.currency, "currency"}}) {
    if (value->size() > kMaxTextBytes) {
      return Status::Invalid(
          "invalid_field",
          std::string(name) + " is longer than " + std::to_string(kMaxTextBytes) + " bytes",
          Field(where, name));
    }
  }
  if (!std::isfinite(item.price) || item.price < 0) {
    return Status::Invalid("invalid_field", "price must be a finite number >= 0",
                           Field(where, "price"));
  }
  for (auto [list, name] :
       {std::pair<const std::vector<std::string>*, const char*>{&item.categories, "categories"},
        {&item.tags, "tags"}}) {
    if (list->size() > kMaxListEntries) {
      return Status::Invalid(
          "invalid_field",
          std::string(name) + " has more than " + std::to_string(kMaxListEntries) + " entries",
          Field(where, name));
    }
    for (const auto& v : *list) {
      if (v.size() > kMaxIdBytes) {
        return Status::Invalid(
            "invalid_field",
            std::string(name) + " entry longer than " + std::to_string(kMaxIdBytes) + " bytes",
            Field(where, name));
      }
    }
  }
  return Status::Ok();
}

// A sharded LRU of decoded items keyed by tenant \0 id; a null value caches a miss so that
// candidates missing from the catalog do not reach RocksDB on every request.
struct Catalog::Impl {
  struct Node {
    std::string key;
    std::shared_ptr<const Item> item;
  };
  struct Shard {
    std::mutex mu;
    std::list<Node> lru;                                                    // front = most recent
    std::unordered_map<std::string_view, std::list<Node>::iterator> index;  // views node keys
    uint64_t version = 0;  // bumped by every write, so a slow miss cannot cache a stale read
  };

  store::Store& store;
  CatalogOptions options;
  size_t shard_capacity;
  std::array<Shard, kShards> shards;
  std::mutex write_mu;  // one writer: alias and count bookkeeping read-modify-write

  Impl(store::Store& s, CatalogOptions o)
      : store(s), options(o), shard_capacity(std::max<size_t>(1, o.cache_items / kShards)) {}

  rocksdb::DB* db() const { return store.db(Cf::kCatalog); }
  rocksdb::ColumnFamilyHandle* cf() const { return store.cf(Cf::kCatalog); }

  Shard& ShardFor(std::string_view key) {
    return shards[std::hash<std::string_view>{}(key) % kShards];
  }

  // REQUIRES: shard.mu held.
  void PutLocked(Shard& shard, std::string_view key, std::shared_ptr<const Item> item) {
    if (auto it = shard.index.find(key); it != shard.index.end()) {
      it->second->item = std::move(item);
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return;
    }
    shard.lru.push_front(Node{std::string(key), std::move(item)});
    shard.index.emplace(shard.lru.front().key, shard.lru.begin());
    while (shard.lru.size() > shard_capacity) {
      shard.index.erase(shard.lru.back().key);
      shard.lru.pop_back();
    }
  }

  // Write-through after a committed write.
  void CacheWritten(std::string_view key, std::shared_ptr<const Item> item) {
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mu);
    ++shard.version;
    PutLocked(shard, key, std::move(item));
  }

  std::optional<std::string> ReadRaw(const std::string& key) const {
    std::string value;
    auto s = db()->Get({}, cf(), key, &value);
    if (!s.ok()) return std::nullopt;
    return value;
  }

  std::shared_ptr<const Item> ReadItem(std::string_view tenant, std::string_view id) const {
    auto raw = ReadRaw(Key(kItemTag, tenant, id));
    if (!raw) return nullptr;
    auto item = DecodeItem(tenant, id, *raw);
    if (!item.ok()) return nullptr;  // corrupt records read as absent; Upsert replaces them
    return std::make_shared<const Item>(std::move(item).value());
  }

  uint64_t ReadCount(std::string_view tenant) const {
    auto raw = ReadRaw(CountKey(tenant));
    return raw && raw->size() == 8 ? store::ReadU64(*raw) : 0;
  }
};

Catalog::Catalog(store::Store& store, CatalogOptions options)
    : impl_(std::make_unique<Impl>(store, options)) {}

Catalog::~Catalog() = default;

std::shared_ptr<const Item> Catalog::Get(std::string_view tenant, std::string_view id) const {
  // A reused per-thread key buffer: no allocation per lookup on the serving path.
  thread_local std::string key;
  AppendKey(key, kItemTag, tenant, id);
  Impl::Shard& shard = impl_->ShardFor(key);
  uint64_t version;
  {
    std::lock_guard lock(shard.mu);
    if (auto it = shard.index.find(key); it != shard.index.end()) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return it->second->item;
    }
    version = shard.version;
  }
  auto item = impl_->ReadItem(tenant, id);
  std::lock_guard lock(shard.mu);
  if (shard.version == version && !shard.index.contains(key)) impl_->PutLocked(shard, key, item);
  return item;
}

std::optional<std::string> Catalog::Resolve(std::string_view tenant, std::string_view key) const {
  if (key.empty()) return std::nullopt;
  if (Get(tenant, key)) return std::string(key);
  for (char tag : {kHandleTag, kShopifyTag}) {
    if (auto id = impl_->ReadRaw(Key(tag, tenant, key))) return id;
  }
  return std::nullopt;
}

common::Status Catalog::Upsert(std::span<const Item> items) {
  if (items.size() > impl_->options.max_batch) {
    return Status::Make(
        common::Code::kTooLarge, "too_many_items",
        "at most " + std::to_string(impl_->options.max_batch) + " items per request", "items");
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (auto s = ValidateItem(items[i], "items[" + std::to_string(i) + "]"); !s.ok()) return s;
  }
  int64_t now = common::NowMs();
  std::lock_guard write_lock(impl_->write_mu);

  // The last occurrence of an id in the batch wins.
  std::unordered_map<std::string, size_t> last;
  for (size_t i = 0; i < items.size(); ++i) last[Key(kItemTag, items[i].tenant, items[i].id)] = i;

  std::vector<std::string> deletes;
  std::vector<std::pair<std::string, std::string>> puts;
  std::unordered_map<std::string, int64_t> count_delta;
  std::vector<std::pair<std::string, std::shared_ptr<const Item>>> written;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& in = items[i];
    std::string key = Key(kItemTag, in.tenant, in.id);
    if (last[key] != i) continue;
    auto old = impl_->ReadItem(in.tenant, in.id);
    if (!old) {
      ++count_delta[in.tenant];
    } else {
      // Drop aliases the new version no longer has, unless another item took them over.
      for (auto [tag, old_alias, new_alias] :
           {std::tuple{kHandleTag, &old->handle, &in.handle},
            std::tuple{kShopifyTag, &old->shopify_id, &in.shopify_id}}) {
        if (old_alias->empty() || *old_alias == *new_alias) continue;
        std::string alias_key = Key(tag, in.tenant, *old_alias);
        if (impl_->ReadRaw(alias_key) == in.id) deletes.push_back(std::move(alias_key));
      }
    }
    auto item = std::make_shared<Item>(in);
    if (item->updated_ms == 0) item->updated_ms = now;
    puts.emplace_back(key, EncodeItem(*item));
    if (!in.handle.empty() && in.handle != in.id) {
      puts.emplace_back(Key(kHandleTag, in.tenant, in.handle), in.id);
    }
    if (!in.shopify_id.empty()) {
      puts.emplace_back(Key(kShopifyTag, in.tenant, in.shopify_id), in.id);
    }
    written.emplace_back(std::move(key), std::move(item));
  }
  for (const auto& [tenant, delta] : count_delta) {
    std::string value;
    store::AppendU64(value, impl_->ReadCount(tenant) + static_cast<uint64_t>(delta));
    puts.emplace_back(CountKey(tenant), std::move(value));
  }
  // Alias deletes go first so that an alias moved to another item in this batch survives.
  rocksdb::WriteBatch batch;
  for (const auto& key : deletes) batch.Delete(impl_->cf(), key);
  for (const auto& [key, value] : puts) batch.Put(impl_->cf(), key, value);
  rocksdb::WriteOptions wo;
  wo.sync = true;  // the catalog is not rebuilt from the event log
  if (auto s = impl_->db()->Write(wo, &batch); !s.ok()) {
    return store::FromRocks(s, "catalog upsert");
  }
  for (auto& [key, item] : written) impl_->CacheWritten(key, std::move(item));
  return Status::Ok();
}

common::Result<bool> Catalog::Delete(std::string_view tenant, std::string_view id) {
  std::lock_guard write_lock(impl_->write_mu);
  auto old = impl_->ReadItem(tenant, id);
  std::string key = Key(kItemTag, tenant, id);
  if (!old) {
    if (!impl_->ReadRaw(key)) return false;
    // A corrupt record: remove it without alias bookkeeping.
  }
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->cf(), key);
  if (old) {
    for (auto [tag, alias] :
         {std::pair{kHandleTag, &old->handle}, std::pair{kShopifyTag, &old->shopify_id}}) {
      if (alias->empty()) continue;
      std::string alias_key = Key(tag, tenant, *alias);
      if (impl_->ReadRaw(alias_key) == id) batch.Delete(impl_->cf(), alias_key);
    }
  }
  uint64_t count = impl_->ReadCount(tenant);
  std::string value;
  store::AppendU64(value, count > 0 ? count - 1 : 0);
  batch.Put(impl_->cf(), CountKey(tenant), value);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto s = impl_->db()->Write(wo, &batch); !s.ok()) {
    return store::FromRocks(s, "catalog delete");
  }
  impl_->CacheWritten(key, nullptr);
  return true;
}

std::vector<Item> Catalog::List(std::string_view tenant, size_t offset, size_t limit) const {
  std::vector<Item> out;
  limit = std::min(limit, impl_->options.max_list);
  if (limit == 0) return out;
  std::string prefix = Key(kItemTag, tenant, "");
  std::string upper = prefix;
  upper.back() = '\1';  // tenant \1 sorts right after every tenant \0 id key
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db()->NewIterator(ro, impl_->cf()));
  size_t skipped = 0;
  for (it->Seek(prefix); it->Valid() && out.size() < limit; it->Next()) {
    if (skipped < offset) {
      ++skipped;
      continue;
    }
    std::string_view id = it->key().ToStringView().substr(prefix.size());
    auto item = DecodeItem(tenant, id, it->value().ToStringView());
    if (item.ok()) out.push_back(std::move(item).value());
  }
  return out;
}

uint64_t Catalog::Count(std::string_view tenant) const { return impl_->ReadCount(tenant); }

size_t Catalog::cached_entries() const {
  size_t n = 0;
  for (auto& shard : impl_->shards) {
    std::lock_guard lock(shard.mu);
    n += shard.lru.size();
  }
  return n;
}

}  // namespace streamrec::catalog
