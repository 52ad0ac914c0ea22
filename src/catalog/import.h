// Catalog input formats: our item JSON (PUT /v1/items), JSON lines, CSV and Shopify's
// products.json. Parsers are pure: they return items stamped with `tenant` and validated
// (ValidateItem), or the first error with its line (or array index) and field.
#pragma once

#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "common/status.h"

namespace streamrec::catalog {

//! Most items one parse returns (kTooLarge beyond).
inline constexpr size_t kMaxParsedItems = 1'000'000;

//! An array of item objects, or {"items": [...]}. Item fields: id (string or integer;
//! required), handle, title, url, image_url, price (number or numeric string), currency,
//! categories and tags (array of strings, or one string), available, published (bools),
//! shopify_id, updated_ms. Unknown fields are ignored. Errors name "items[i].field".
common::Result<std::vector<Item>> ParseItemsJson(std::string_view body, std::string_view tenant);

//! One item object per line (blank lines skipped). Errors say "line N: ..." and name the field.
common::Result<std::vector<Item>> ParseItemsJsonl(std::string_view body, std::string_view tenant);

//! RFC 4180 CSV with a header row naming the columns: id (required), handle, title, url,
//! image_url, price, currency, categories, tags, available, published, shopify_id,
//! updated_ms; other columns are ignored. Lists are separated by '|'. Booleans: true/false,
//! 1/0, yes/no; empty means true. Errors say "line N: ..." (physical line of the record).
common::Result<std::vector<Item>> ParseItemsCsv(std::string_view body, std::string_view tenant);

struct ShopifyOptions {
  bool id_from_handle = true;             //!< our id = handle (URL slug), else the numeric id
  std::string url_prefix = "/products/";  //!< url = url_prefix + handle
  std::string currency;                   //!< products.json carries none
};

//! Shopify's products.json: {"products": [{"id", "handle", "title", "product_type", "tags"
//! (comma-separated string or array), "variants": [{"price", "available"}], "images":
//! [{"src"}], "published_at"}]}. price = lowest variant price, available = any variant
//! available (a variant without "available" counts as available), categories =
//! [product_type], published = published_at is not null, shopify_id = id.
common::Result<std::vector<Item>> ParseShopifyProductsJson(std::string_view body,
                                                           std::string_view tenant,
                                                           const ShopifyOptions& options = {});

//! Parses a catalog file by its extension: .csv, .jsonl / .ndjson, or .json (Shopify when the
//! top-level object has "products", else ParseItemsJson's shape).
common::Result<std::vector<Item>> ParseCatalogFile(std::string_view tenant,
                                                   const std::string& path);

//! An item in ParseItemsJson's shape (what `PUT /v1/items` takes).
boost::json::object ItemToJson(const Item& item);

//! Reads a catalog file and upserts it in batches: .csv, .jsonl / .ndjson, or .json (Shopify
//! when the top-level object has "products", else ParseItemsJson). Returns the item count.
//! NOTE: batches already written stay written when a later one fails; parsing happens
//! first, so a malformed file writes nothing.
common::Result<size_t> ImportFile(Catalog& catalog, std::string_view tenant,
                                  const std::string& path);

}  // namespace streamrec::catalog
