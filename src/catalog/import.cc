#include "catalog/import.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace streamrec::catalog {

namespace json = boost::json;
using common::Status;

namespace {

constexpr uint64_t kMaxFileBytes = 1ull << 30;
constexpr size_t kImportBatch = 1000;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

//! Where an error happened: a JSON path ("items[3]") or a line ("line 7").
struct Where {
  std::string path;  // prefix of field names, may be empty
  int64_t line = 0;  // > 0 for line-based formats: the message starts with "line N: "

  std::string FieldName(std::string_view name) const {
    if (line > 0 || path.empty()) return std::string(name);
    if (name.empty()) return path;
    return path + "." + std::string(name);
  }
  Status Error(std::string_view name, std::string message) const {
    if (line > 0) message = "line " + std::to_string(line) + ": " + message;
    return Status::Invalid("invalid_item", std::move(message), FieldName(name));
  }
};

std::vector<std::string> SplitList(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    size_t at = s.find(sep);
    auto part = Trim(s.substr(0, at));
    if (!part.empty()) out.emplace_back(part);
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

bool ParseDouble(std::string_view s, double& out) {
  s = Trim(s);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

bool ParseInt(std::string_view s, int64_t& out) {
  s = Trim(s);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
}

bool ParseBool(std::string_view s, bool& out) {
  std::string v = Lower(Trim(s));
  if (v.empty() || v == "true" || v == "1" || v == "yes" || v == "y") {
    out = true;
  } else if (v == "false" || v == "0" || v == "no" || v == "n") {
    out = false;
  } else {
    return false;
  }
  return true;
}

// --- JSON helpers

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }

//! A string, or an integer written as its decimal digits (ids, Shopify ids).
common::Result<std::string> StringOrInt(const json::value& v, const Where& where,
                                        std::string_view name) {
  if (v.is_string()) return std::string(View(v.get_string()));
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  return where.Error(name, std::string(name) + " must be a string or an integer");
}

common::Result<double> Price(const json::value& v, const Where& where, std::string_view name) {
  double d = 0;
  if (v.is_number()) {
    d = v.to_number<double>();
  } else if (v.is_string()) {
    if (View(v.get_string()).empty()) return 0.0;
    if (!ParseDouble(View(v.get_string()), d)) {
      return where.Error(name, std::string(name) + " must be a number, got \"" +
                                   std::string(View(v.get_string())) + "\"");
    }
  } else if (v.is_null()) {
    return 0.0;
  } else {
    return where.Error(name, std::string(name) + " must be a number");
  }
  if (!std::isfinite(d) || d < 0) return where.Error(name, std::string(name) + " must be >= 0");
  return d;
}

common::Result<std::vector<std::string>> StringList(const json::value& v, const Where& where,
                                                    std::string_view name, char sep) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (v.is_string()) return SplitList(View(v.get_string()), sep);
  if (!v.is_array()) {
    return where.Error(name, std::string(name) + " must be an array of strings or a string");
  }
  for (const auto& e : v.get_array()) {
    if (!e.is_string()) return where.Error(name, std::string(name) + " entries must be strings");
    auto s = Trim(View(e.get_string()));
    if (!s.empty()) out.emplace_back(s);
  }
  return out;
}

common::Result<Item> ItemFromJson(const json::value& v, std::string_view tenant,
                                  const Where& where) {
  if (!v.is_object()) return where.Error("", "an item must be a JSON object");
  const auto& o = v.get_object();
  Item item;
  item.tenant = tenant;
  for (const auto& [k, value] : o) {
    std::string_view key(k.data(), k.size());
    auto text = [&](std::string& out) -> Status {
      if (value.is_null()) return Status::Ok();
      if (!value.is_string()) return where.Error(key, std::string(key) + " must be a string");
      out = View(value.get_string());
      return Status::Ok();
    };
    Status s;
    if (key == "id" || key == "shopify_id") {
      auto r = StringOrInt(value, where, key);
      if (!r.ok()) return r.status();
      (key == "id" ? item.id : item.shopify_id) = std::move(r).value();
    } else if (key == "handle") {
      s = text(item.handle);
    } else if (key == "title") {
      s = text(item.title);
    } else if (key == "url") {
      s = text(item.url);
    } else if (key == "image_url") {
      s = text(item.image_url);
    } else if (key == "currency") {
      s = text(item.currency);
    } else if (key == "price") {
      auto r = Price(value, where, key);
      if (!r.ok()) return r.status();
      item.price = *r;
    } else if (key == "categories" || key == "tags") {
      auto r = StringList(value, where, key, '|');
      if (!r.ok()) return r.status();
      (key == "tags" ? item.tags : item.categories) = std::move(r).value();
    } else if (key == "available" || key == "published") {
      if (!value.is_bool()) return where.Error(key, std::string(key) + " must be true or false");
      (key == "available" ? item.available : item.published) = value.get_bool();
    } else if (key == "updated_ms") {
      if (!value.is_int64()) return where.Error(key, "updated_ms must be an integer");
      item.updated_ms = value.get_int64();
    }
    if (!s.ok()) return s;
  }
  if (item.id.empty()) return where.Error("id", "id is required");
  if (auto s = ValidateItem(item, where.line > 0 ? "" : where.path); !s.ok()) {
    if (where.line > 0) s.message = "line " + std::to_string(where.line) + ": " + s.message;
    return s;
  }
  return item;
}

//! Parses JSON and on failure says at which line the syntax broke.
common::Result<json::value> ParseJson(std::string_view body, int64_t line_offset = 0) {
  json::stream_parser parser;
  boost::system::error_code ec;
  size_t used = parser.write(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    if (used > body.size()) used = body.size();
    int64_t line = line_offset + 1 + std::count(body.begin(), body.begin() + used, '\n');
    return Status::Invalid("invalid_json", "line " + std::to_string(line) + ": " + ec.message());
  }
  return parser.release();
}

Status TooMany() {
  return Status::Make(common::Code::kTooLarge, "too_many_items",
                      "more than " + std::to_string(kMaxParsedItems) + " items");
}

common::Result<std::vector<Item>> ItemsFromJsonValue(const json::value& root,
                                                     std::string_view tenant) {
  const json::array* array = nullptr;
  if (root.is_array()) {
    array = &root.get_array();
  } else if (root.is_object() && root.get_object().contains("items") &&
             root.get_object().at("items").is_array()) {
    array = &root.get_object().at("items").get_array();
  } else {
    return Status::Invalid("invalid_items", "expected an array of items or {\"items\": [...]}",
                           "items");
  }
  if (array->size() > kMaxParsedItems) return TooMany();
  std::vector<Item> items;
  items.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    auto item = ItemFromJson((*array)[i], tenant, Where{"items[" + std::to_string(i) + "]", 0});
    if (!item.ok()) return item.status();
    items.push_back(std::move(item).value());
  }
  return items;
}

const json::value* Member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : &it->value();
}

common::Result<std::vector<Item>> ShopifyFromJsonValue(const json::value& root,
                                                       std::string_view tenant,
                                                       const ShopifyOptions& options) {
  const json::value* products = root.is_object() ? Member(root.get_object(), "products") : nullptr;
  if (!products || !products->is_array()) {
    return Status::Invalid("invalid_products", "expected {\"products\": [...]}", "products");
  }
  const auto& array = products->get_array();
  if (array.size() > kMaxParsedItems) return TooMany();
  std::vector<Item> items;
  items.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    Where where{"products[" + std::to_string(i) + "]", 0};
    if (!array[i].is_object()) return where.Error("", "a product must be a JSON object");
    const auto& p = array[i].get_object();
    Item item;
    item.tenant = tenant;
    item.currency = options.currency;
    if (const auto* id = Member(p, "id"); id && !id->is_null()) {
      auto r = StringOrInt(*id, where, "id");
      if (!r.ok()) return r.status();
      item.shopify_id = std::move(r).value();
    }
    auto text = [&](std::string_view key, std::string& out) -> Status {
      const auto* v = Member(p, key);
      if (!v || v->is_null()) return Status::Ok();
      if (!v->is_string()) return where.Error(key, std::string(key) + " must be a string");
      out = View(v->get_string());
      return Status::Ok();
    };
    std::string product_type;
    for (auto [key, out] : {std::pair<std::string_view, std::string*>{"handle", &item.handle},
                            {"title", &item.title},
                            {"product_type", &product_type}}) {
      if (auto s = text(key, *out); !s.ok()) return s;
    }
    item.id = options.id_from_handle && !item.handle.empty() ? item.handle : item.shopify_id;
    if (item.id.empty()) return where.Error("handle", "a product needs a handle or an id");
    if (!item.handle.empty()) item.url = options.url_prefix + item.handle;
    if (auto type = Trim(product_type); !type.empty()) item.categories.emplace_back(type);
    if (const auto* tags = Member(p, "tags")) {
      auto r = StringList(*tags, where, "tags", ',');
      if (!r.ok()) return r.status();
      item.tags = std::move(r).value();
    }
    if (const auto* variants = Member(p, "variants"); variants && !variants->is_null()) {
      if (!variants->is_array()) return where.Error("variants", "variants must be an array");
      double min_price = std::numeric_limits<double>::infinity();
      bool any_available = variants->get_array().empty();
      for (size_t j = 0; j < variants->get_array().size(); ++j) {
        const auto& v = variants->get_array()[j];
        Where vw{where.path + ".variants[" + std::to_string(j) + "]", 0};
        if (!v.is_object()) return vw.Error("", "a variant must be a JSON object");
        if (const auto* price = Member(v.get_object(), "price")) {
          auto r = Price(*price, vw, "price");
          if (!r.ok()) return r.status();
          min_price = std::min(min_price, *r);
        }
        const auto* available = Member(v.get_object(), "available");
        if (available && !available->is_null() && !available->is_bool()) {
          return vw.Error("available", "available must be true or false");
        }
        if (!available || available->is_null() || available->get_bool()) any_available = true;
      }
      if (std::isfinite(min_price)) item.price = min_price;
      item.available = any_available;
    }
    if (const auto* images = Member(p, "images");
        images && images->is_array() && !images->get_array().empty()) {
      const auto& first = images->get_array()[0];
      if (first.is_object()) {
        if (const auto* src = Member(first.get_object(), "src"); src && src->is_string()) {
          item.image_url = View(src->get_string());
        }
      }
    } else if (const auto* image = Member(p, "image"); image && image->is_object()) {
      if (const auto* src = Member(image->get_object(), "src"); src && src->is_string()) {
        item.image_url = View(src->get_string());
      }
    }
    if (const auto* published = Member(p, "published_at")) item.published = !published->is_null();
    if (auto s = ValidateItem(item, where.path); !s.ok()) return s;
    items.push_back(std::move(item));
  }
  return items;
}

// --- CSV

enum class CsvColumn {
  kIgnored,
  kId,
  kHandle,
  kTitle,
  kUrl,
  kImageUrl,
  kPrice,
  kCurrency,
  kCategories,
  kTags,
  kAvailable,
  kPublished,
  kShopifyId,
  kUpdatedMs,
};

CsvColumn ColumnFor(std::string_view name) {
  static const std::pair<std::string_view, CsvColumn> kColumns[] = {
      {"id", CsvColumn::kId},
      {"handle", CsvColumn::kHandle},
      {"title", CsvColumn::kTitle},
      {"url", CsvColumn::kUrl},
      {"image_url", CsvColumn::kImageUrl},
      {"price", CsvColumn::kPrice},
      {"currency", CsvColumn::kCurrency},
      {"categories", CsvColumn::kCategories},
      {"tags", CsvColumn::kTags},
      {"available", CsvColumn::kAvailable},
      {"published", CsvColumn::kPublished},
      {"shopify_id", CsvColumn::kShopifyId},
      {"updated_ms", CsvColumn::kUpdatedMs},
  };
  for (auto [n, c] : kColumns) {
    if (n == name) return c;
  }
  return CsvColumn::kIgnored;
}

//! Reads RFC 4180 records one at a time, tracking physical line numbers.
class CsvReader {
 public:
  explicit CsvReader(std::string_view in) : in_(in) {
    if (in_.starts_with("\xEF\xBB\xBF")) in_.remove_prefix(3);  // UTF-8 BOM from spreadsheets
  }
  bool done() const { return pos_ >= in_.size(); }
  int64_t line() const { return line_; }  // line where the last record started

  //! Next record into `fields`; an error names the line.
  Status Next(std::vector<std::string>& fields) {
    fields.clear();
    line_ = next_line_;
    std::string field;
    bool quoted = false, after_quote = false;
    while (pos_ < in_.size()) {
      char c = in_[pos_++];
      if (quoted) {
        if (c == '"') {
          if (pos_ < in_.size() && in_[pos_] == '"') {
            field.push_back('"');
            ++pos_;
          } else {
            quoted = false;
            after_quote = true;
          }
        } else {
          if (c == '\n') ++next_line_;
          field.push_back(c);
        }
        continue;
      }
      if (c == ',') {
        fields.push_back(std::move(field));
        field.clear();
        after_quote = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && pos_ < in_.size() && in_[pos_] == '\n') ++pos_;
        ++next_line_;
        fields.push_back(std::move(field));
        return Status::Ok();
      } else if (c == '"') {
        if (!field.empty() || after_quote) {
          return Error("a quote inside an unquoted field (quote the field and double the quote)");
        }
        quoted = true;
      } else {
        if (after_quote) return Error("text after a closing quote");
        field.push_back(c);
      }
    }
    if (quoted) return Error("unterminated quoted field");
    fields.push_back(std::move(field));
    return Status::Ok();
  }

 private:
  Status Error(const std::string& message) const {
    return Status::Invalid("invalid_csv", "line " + std::to_string(next_line_) + ": " + message);
  }
  std::string_view in_;
  size_t pos_ = 0;
  int64_t line_ = 1, next_line_ = 1;
};

bool BlankRecord(const std::vector<std::string>& fields) {
  return fields.size() == 1 && Trim(fields[0]).empty();
}

}  // namespace

common::Result<std::vector<Item>> ParseItemsJson(std::string_view body, std::string_view tenant) {
  auto root = ParseJson(body);
  if (!root.ok()) return root.status();
  return ItemsFromJsonValue(*root, tenant);
}

common::Result<std::vector<Item>> ParseItemsJsonl(std::string_view body, std::string_view tenant) {
  std::vector<Item> items;
  int64_t line = 0;
  while (!body.empty()) {
    ++line;
    size_t end = body.find('\n');
    std::string_view text = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    if (Trim(text).empty()) continue;
    auto value = ParseJson(text, line - 1);
    if (!value.ok()) return value.status();
    if (items.size() >= kMaxParsedItems) return TooMany();
    auto item = ItemFromJson(*value, tenant, Where{"", line});
    if (!item.ok()) return item.status();
    items.push_back(std::move(item).value());
  }
  return items;
}

common::Result<std::vector<Item>> ParseItemsCsv(std::string_view body, std::string_view tenant) {
  CsvReader reader(body);
  std::vector<std::string> fields;
  // Header: the first non-blank record.
  std::vector<CsvColumn> columns;
  while (!reader.done() && columns.empty()) {
    if (auto s = reader.Next(fields); !s.ok()) return s;
    if (BlankRecord(fields)) continue;
    for (const auto& name : fields) columns.push_back(ColumnFor(Lower(Trim(name))));
  }
  if (std::find(columns.begin(), columns.end(), CsvColumn::kId) == columns.end()) {
    return Status::Invalid("invalid_csv", "line 1: the header row has no \"id\" column", "id");
  }
  std::vector<Item> items;
  while (!reader.done()) {
    if (auto s = reader.Next(fields); !s.ok()) return s;
    if (BlankRecord(fields)) continue;
    Where where{"", reader.line()};
    if (fields.size() != columns.size()) {
      return Status::Invalid("invalid_csv", "line " + std::to_string(reader.line()) +
                                                ": expected " + std::to_string(columns.size()) +
                                                " fields, got " + std::to_string(fields.size()));
    }
    if (items.size() >= kMaxParsedItems) return TooMany();
    Item item;
    item.tenant = tenant;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string& f = fields[i];
      switch (columns[i]) {
        case CsvColumn::kIgnored:
          break;
        case CsvColumn::kId:
          item.id = Trim(f);
          break;
        case CsvColumn::kHandle:
          item.handle = Trim(f);
          break;
        case CsvColumn::kTitle:
          item.title = std::move(f);
          break;
        case CsvColumn::kUrl:
          item.url = Trim(f);
          break;
        case CsvColumn::kImageUrl:
          item.image_url = Trim(f);
          break;
        case CsvColumn::kCurrency:
          item.currency = Trim(f);
          break;
        case CsvColumn::kShopifyId:
          item.shopify_id = Trim(f);
          break;
        case CsvColumn::kCategories:
          item.categories = SplitList(f, '|');
          break;
        case CsvColumn::kTags:
          item.tags = SplitList(f, '|');
          break;
        case CsvColumn::kPrice:
          if (!Trim(f).empty() && !ParseDouble(f, item.price)) {
            return where.Error("price", "price must be a number, got \"" + f + "\"");
          }
          break;
        case CsvColumn::kAvailable:
        case CsvColumn::kPublished: {
          bool& out = columns[i] == CsvColumn::kAvailable ? item.available : item.published;
          if (!ParseBool(f, out)) {
            const char* name = columns[i] == CsvColumn::kAvailable ? "available" : "published";
            return where.Error(name,
                               std::string(name) + " must be true or false, got \"" + f + "\"");
          }
          break;
        }
        case CsvColumn::kUpdatedMs:
          if (!Trim(f).empty() && !ParseInt(f, item.updated_ms)) {
            return where.Error("updated_ms", "updated_ms must be an integer");
          }
          break;
      }
    }
    if (item.id.empty()) return where.Error("id", "id is required");
    if (auto s = ValidateItem(item, ""); !s.ok()) {
      s.message = "line " + std::to_string(reader.line()) + ": " + s.message;
      return s;
    }
    items.push_back(std::move(item));
  }
  return items;
}

common::Result<std::vector<Item>> ParseShopifyProductsJson(std::string_view body,
                                                           std::string_view tenant,
                                                           const ShopifyOptions& options) {
  auto root = ParseJson(body);
  if (!root.ok()) return root.status();
  return ShopifyFromJsonValue(*root, tenant, options);
}

common::Result<std::vector<Item>> ParseCatalogFile(std::string_view tenant,
                                                   const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return Status::Make(common::Code::kNotFound, "file_not_found", path + ": " + ec.message());
  if (size > kMaxFileBytes) {
    return Status::Make(common::Code::kTooLarge, "file_too_large", path + " is over 1 GiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::string body(size, '\0');
  if (!in.read(body.data(), static_cast<std::streamsize>(size))) {
    return Status::Internal("cannot read " + path);
  }
  std::string ext = Lower(std::filesystem::path(path).extension().string());
  common::Result<std::vector<Item>> items = std::vector<Item>{};
  if (ext == ".csv") {
    items = ParseItemsCsv(body, tenant);
  } else if (ext == ".jsonl" || ext == ".ndjson") {
    items = ParseItemsJsonl(body, tenant);
  } else if (ext == ".json") {
    auto root = ParseJson(body);
    if (!root.ok()) return root.status();
    if (root->is_object() && root->get_object().contains("products")) {
      items = ShopifyFromJsonValue(*root, tenant, {});
    } else {
      items = ItemsFromJsonValue(*root, tenant);
    }
  } else {
    return Status::Invalid("unknown_format",
                           path + ": expected a .csv, .jsonl, .ndjson or .json file", "path");
  }
  if (!items.ok()) {
    Status s = items.status();
    s.message = path + ": " + s.message;
    return s;
  }
  return items;
}

boost::json::object ItemToJson(const Item& item) {
  boost::json::object o;
  o["id"] = item.id;
  o["handle"] = item.handle;
  o["title"] = item.title;
  o["url"] = item.url;
  o["image_url"] = item.image_url;
  o["price"] = item.price;
  o["currency"] = item.currency;
  o["categories"] = boost::json::value_from(item.categories);
  o["tags"] = boost::json::value_from(item.tags);
  o["available"] = item.available;
  o["published"] = item.published;
  if (!item.shopify_id.empty()) o["shopify_id"] = item.shopify_id;
  return o;
}

common::Result<size_t> ImportFile(Catalog& catalog, std::string_view tenant,
                                  const std::string& path) {
  auto items = ParseCatalogFile(tenant, path);
  if (!items.ok()) return items.status();
  std::span<const Item> all(*items);
  for (size_t at = 0; at < all.size(); at += kImportBatch) {
    auto s = catalog.Upsert(all.subspan(at, std::min(kImportBatch, all.size() - at)));
    if (!s.ok()) return s;
  }
  return all.size();
}

}  // namespace streamrec::catalog
