#include "serve/catalog_api.h"

#include <boost/json.hpp>

#include "catalog/import.h"
#include "serve/api.h"
#include "serve/request.h"

namespace streamrec::serve {

namespace json = boost::json;
using common::Status;

json::object CatalogFieldsJson(const catalog::Item& item) {
  json::object o;
  o["title"] = item.title;
  o["url"] = item.url;
  o["image_url"] = item.image_url;
  o["price"] = item.price;
  o["currency"] = item.currency;
  o["available"] = item.available;
  if (!item.categories.empty()) o["category"] = item.categories.front();
  return o;
}

namespace {

json::object ItemJson(const catalog::Item& item) {
  json::object o = catalog::ItemToJson(item);
  o["tenant"] = item.tenant;
  if (!item.categories.empty()) o["category"] = item.categories.front();
  o["updated_ms"] = item.updated_ms;
  return o;
}

void RespondStatus(const Request& req, const Responder& respond, const Status& s) {
  respond(JsonResponse(req, HttpStatusFor(s.code), ErrorJson(s)));
}

}  // namespace

bool CatalogApi::Handle(const Request& req, const Target& t, const std::string& tenant,
                        const Responder& respond) {
  const auto& seg = t.segments;
  const auto method = req.method();
  if (seg.size() >= 2 && seg[0] == "v1" && seg[1] == "rules") {
    if (seg.size() != 2) return false;
    if (method == http::verb::put || method == http::verb::post) {
      PutRules(req, t.Param("tenant"), respond);
    } else {
      respond(JsonResponse(req, http::status::ok, rules_.ToJson()));
    }
    return true;
  }
  if (seg.size() < 2 || seg[0] != "v1" || seg[1] != "items") return false;
  if (seg.size() == 2) {
    if (method == http::verb::put || method == http::verb::post) {
      PutItems(req, tenant, respond);
    } else {
      ListItems(req, t, tenant, respond);
    }
    return true;
  }
  if (seg.size() == 3) {
    if (method == http::verb::delete_) {
      DeleteItem(req, tenant, seg[2], respond);
    } else {
      GetItem(req, tenant, seg[2], respond);
    }
    return true;
  }
  return false;
}

void CatalogApi::PutItems(const Request& req, const std::string& tenant,
                          const Responder& respond) {
  auto items = catalog::ParseItemsJson(req.body(), tenant);
  if (!items.ok()) return RespondStatus(req, respond, items.status());
  if (auto s = catalog_.Upsert(*items); !s.ok()) return RespondStatus(req, respond, s);
  json::object body;
  body["upserted"] = items->size();
  body["tenant"] = tenant;
  body["count"] = catalog_.Count(tenant);
  respond(JsonResponse(req, http::status::ok, json::serialize(body)));
}

void CatalogApi::GetItem(const Request& req, const std::string& tenant, const std::string& id,
                         const Responder& respond) {
  auto resolved = catalog_.Resolve(tenant, id);
  auto item = resolved ? catalog_.Get(tenant, *resolved) : nullptr;
  if (!item) {
    return RespondStatus(req, respond,
                         Status::Make(common::Code::kNotFound, "unknown_item",
                                      "no item '" + id + "' in tenant '" + tenant + "'", "id"));
  }
  respond(JsonResponse(req, http::status::ok, json::serialize(ItemJson(*item))));
}

void CatalogApi::DeleteItem(const Request& req, const std::string& tenant, const std::string& id,
                            const Responder& respond) {
  auto deleted = catalog_.Delete(tenant, id);
  if (!deleted.ok()) return RespondStatus(req, respond, deleted.status());
  json::object body;
  body["deleted"] = *deleted;
  respond(JsonResponse(req, *deleted ? http::status::ok : http::status::not_found,
                       json::serialize(body)));
}

void CatalogApi::ListItems(const Request& req, const Target& t, const std::string& tenant,
                           const Responder& respond) {
  auto offset = ParseCount(t, "offset", 0, 0, SIZE_MAX);
  if (!offset.ok()) return RespondStatus(req, respond, offset.status());
  auto limit = ParseCount(t, "limit", 100, 1, 1000);
  if (!limit.ok()) return RespondStatus(req, respond, limit.status());
  json::array items;
  for (const auto& item : catalog_.List(tenant, *offset, *limit)) items.push_back(ItemJson(item));
  json::object body;
  body["tenant"] = tenant;
  body["count"] = catalog_.Count(tenant);
  body["items"] = std::move(items);
  respond(JsonResponse(req, http::status::ok, json::serialize(body)));
}

void CatalogApi::PutRules(const Request& req, const std::optional<std::string>& tenant,
                          const Responder& respond) {
  auto content_type = req[http::field::content_type];
  bool yaml = content_type.find("yaml") != std::string_view::npos;
  if (tenant) {
    // One tenant's placements: {placement: rules}, wrapped into the book's shape.
    if (yaml) {
      return RespondStatus(req, respond,
                           Status::Invalid("invalid_rule",
                                           "send one tenant's rules as JSON, or YAML without "
                                           "?tenant= for the whole book",
                                           "tenant"));
    }
    boost::system::error_code ec;
    auto placements = json::parse(req.body(), ec);
    if (ec || !placements.is_object()) {
      return RespondStatus(req, respond,
                           Status::Invalid("invalid_json", "body must be a JSON object", "body"));
    }
    json::object book;
    book[*tenant] = std::move(placements);
    if (auto s = rules_.LoadJson(json::serialize(book)); !s.ok()) {
      return RespondStatus(req, respond, s);
    }
    if (auto s = rules_.Save(store_); !s.ok()) return RespondStatus(req, respond, s);
    return respond(JsonResponse(req, http::status::ok, rules_.ToJson()));
  }
  // LoadJson/LoadYaml are all or nothing: a broken update leaves the running rules as they are.
  auto s = yaml ? rules_.LoadYaml(req.body()) : rules_.LoadJson(req.body());
  if (!s.ok()) return RespondStatus(req, respond, s);
  if (s = rules_.Save(store_); !s.ok()) return RespondStatus(req, respond, s);
  respond(JsonResponse(req, http::status::ok, rules_.ToJson()));
}

}  // namespace streamrec::serve
