// Catalog and rules administration over HTTP: PUT/GET/DELETE /v1/items, GET/PUT /v1/rules.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "catalog/catalog.h"
#include "rules/rule_book.h"
#include "serve/http_server.h"
#include "store/store.h"

namespace streamrec::serve {

struct Target;

class CatalogApi {
 public:
  CatalogApi(catalog::Catalog& catalog, rules::RuleBook& rules, store::Store& store)
      : catalog_(catalog), rules_(rules), store_(store) {}

  //! Handles the request when it is one of ours; false otherwise.
  bool Handle(const Request& req, const Target& target, const std::string& tenant,
              const Responder& respond);

 private:
  void PutItems(const Request& req, const std::string& tenant, const Responder& respond);
  void GetItem(const Request& req, const std::string& tenant, const std::string& id,
               const Responder& respond);
  void DeleteItem(const Request& req, const std::string& tenant, const std::string& id,
                  const Responder& respond);
  void ListItems(const Request& req, const Target& target, const std::string& tenant,
                 const Responder& respond);
  void PutRules(const Request& req, const std::optional<std::string>& tenant,
                const Responder& respond);

  catalog::Catalog& catalog_;
  rules::RuleBook& rules_;
  store::Store& store_;
};

//! The catalog fields a storefront needs to render an item.
boost::json::object CatalogFieldsJson(const catalog::Item& item);

}  // namespace streamrec::serve
