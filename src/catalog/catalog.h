// The shop catalog: item attributes the business rules filter on, stored in the kCatalog
// column family of the `state` database and cached in memory because serving reads it for
// every candidate. Thread-safe: reads run concurrently; writes are serialized.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace streamrec::catalog {

struct Item {
  std::string tenant, id, handle, title, url, image_url;
  double price = 0;  //!< 0: unknown
  std::string currency;
  std::vector<std::string> categories, tags;  //!< categories[0] is the primary one
  bool available = true, published = true;
  std::string shopify_id;  //!< Shopify product id, when imported from Shopify
  int64_t updated_ms = 0;  //!< set to now by Upsert when 0
  bool operator==(const Item&) const = default;
};

struct CatalogOptions {
  size_t cache_items = 200'000;  //!< cached items (and misses) across tenants, LRU
  size_t max_batch = 10'000;     //!< items per Upsert call (kTooLarge beyond)
  size_t max_list = 1'000;       //!< List() limit cap
};

//! Limits on one item, checked by Upsert and by the parsers.
inline constexpr size_t kMaxIdBytes = 256;
inline constexpr size_t kMaxTextBytes = 4096;  //!< title, urls
inline constexpr size_t kMaxListEntries = 64;  //!< categories, tags

class Catalog {
 public:
  explicit Catalog(store::Store& store, CatalogOptions options = {});
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  //! Inserts or replaces items (each names its tenant) in one synced WriteBatch, with their
  //! handle and Shopify-id aliases; aliases of a replaced version are removed. Invalid items
  //! reject the whole batch with a Status naming "items[i].field".
  common::Status Upsert(std::span<const Item> items);
  //! The item or nullptr. Hot path: served from the cache (misses are cached too).
  std::shared_ptr<const Item> Get(std::string_view tenant, std::string_view id) const;
  //! Our id for an id, URL handle/slug or Shopify product id (tried in that order).
  std::optional<std::string> Resolve(std::string_view tenant, std::string_view key) const;
  //! Removes an item and its aliases; false when it did not exist.
  common::Result<bool> Delete(std::string_view tenant, std::string_view id);
  //! Items in id order; `limit` is capped at options.max_list.
  std::vector<Item> List(std::string_view tenant, size_t offset, size_t limit) const;
  uint64_t Count(std::string_view tenant) const;

  size_t cached_entries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! Binary record of an item (tenant and id live in the key). Exposed for tests/tools.
std::string EncodeItem(const Item& item);
common::Result<Item> DecodeItem(std::string_view tenant, std::string_view id,
                                std::string_view bytes);

//! Checks an item's fields; `where` prefixes field names, e.g. "items[3]".
common::Status ValidateItem(const Item& item, std::string_view where);

}  // namespace streamrec::catalog
