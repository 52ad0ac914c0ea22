#include "sinks/shopify.h"

#include <boost/json.hpp>

namespace streamrec::sinks {
namespace json = boost::json;

std::string ShopifyHandle(std::string_view prefix, std::string_view user_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(prefix);
  for (unsigned char c : user_id) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '_';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

double Num(const json::value* v, double fallback) {
  return v && v->is_number() ? v->to_number<double>() : fallback;
}

std::string ErrorMessages(const json::array& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!e.is_object()) continue;
    if (!out.empty()) out += "; ";
    if (auto* m = e.as_object().if_contains("message"); m && m->is_string()) {
      out += std::string(m->as_string());
    }
    if (auto* c = e.as_object().if_contains("code"); c && c->is_string()) {
      out += " (" + std::string(c->as_string()) + ")";
    }
  }
  return out.substr(0, 300);
}

}  // namespace

PushOutcome ClassifyShopify(const tools::HttpResponse& res, TokenBucket& budget, double cost) {
  if (res.status != 200) return ClassifyHttp(res);  // 429 / 5xx retried, 401 / 404 not
  PushOutcome out;
  out.http_status = 200;
  json::error_code ec;
  json::value doc = json::parse(res.body, ec);
  if (ec || !doc.is_object()) {
    out.kind = PushOutcome::Kind::kFail;
    out.reason = "invalid_response";
    out.detail = res.body.substr(0, 200);
    return out;
  }
  const json::object& root = doc.as_object();
  double requested = cost;
  if (auto* c = root.if_contains("extensions"); c && c->is_object()) {
    if (auto* cost_v = c->as_object().if_contains("cost"); cost_v && cost_v->is_object()) {
      const json::object& co = cost_v->as_object();
      requested = Num(co.if_contains("requestedQueryCost"), cost);
      if (auto* ts = co.if_contains("throttleStatus"); ts && ts->is_object()) {
        const json::object& t = ts->as_object();
        budget.Observe(Num(t.if_contains("currentlyAvailable"), 1e18),
                       Num(t.if_contains("maximumAvailable"), 0),
                       Num(t.if_contains("restoreRate"), 0));
      }
    }
  }
  if (auto* errs = root.if_contains("errors");
      errs && errs->is_array() && !errs->as_array().empty()) {
    bool throttled = false;
    for (const auto& e : errs->as_array()) {
      const json::value* code = nullptr;
      if (e.is_object()) {
        if (auto* ext = e.as_object().if_contains("extensions"); ext && ext->is_object()) {
          code = ext->as_object().if_contains("code");
        }
      }
      if (code && code->is_string() && code->as_string() == "THROTTLED") throttled = true;
    }
    out.detail = ErrorMessages(errs->as_array());
    if (throttled) {
      out.kind = PushOutcome::Kind::kRetry;
      out.reason = "throttled";
      out.throttled = true;
      out.retry_after_s = budget.SecondsUntil(requested);
    } else {
      out.kind = PushOutcome::Kind::kFail;
      out.reason = "graphql_errors";
    }
    return out;
  }
  const json::value* upsert = nullptr;
  if (auto* data = root.if_contains("data"); data && data->is_object()) {
    upsert = data->as_object().if_contains("metaobjectUpsert");
  }
  if (!upsert || !upsert->is_object()) {
    out.kind = PushOutcome::Kind::kFail;
    out.reason = "invalid_response";
    out.detail = "no data.metaobjectUpsert";
    return out;
  }
  if (auto* ue = upsert->as_object().if_contains("userErrors");
      ue && ue->is_array() && !ue->as_array().empty()) {
    out.kind = PushOutcome::Kind::kFail;
    out.reason = "user_errors";
    out.detail = ErrorMessages(ue->as_array());
  }
  return out;
}

common::Result<std::unique_ptr<Sink>> MakeShopifySink(const json::object& config, Deps deps) {
  ConfigReader r(config, "");
  r.OnlyKeys({"type", "name", "shop", "api_version", "token_env", "metaobject_type", "field_key",
              "handle_prefix", "product_ids", "endpoint", "timeout_ms", "senders", "retry",
              "coalesce", "rate", "dead_letter", "stop_deadline_ms"});
  HttpSinkOptions options;
  options.type = "shopify";
  options.coalesce.interval_ns = 60'000'000'000;  // 60 s: metaobject writes cost points
  options.rate_capacity = 1000;                   // Shopify standard plan; adopted from
  options.rate_restore_per_s = 50;                // throttleStatus once answers arrive
  options.cost = 10;
  if (auto s = ReadHttpSinkOptions(config, options); !s.ok()) return s;
  std::string shop = r.String("shop", "");
  std::string version = r.String("api_version", "2025-01");
  std::string token_env = r.String("token_env", "SHOPIFY_TOKEN");
  std::string type = r.String("metaobject_type", "streamrec_recommendations");
  std::string field_key = r.String("field_key", "products");
  std::string prefix = r.String("handle_prefix", "customer-");
  std::string ids = r.String("product_ids", "gid");
  std::string endpoint = r.String("endpoint", "");
  if (!r.status().ok()) return r.status();
  if (ids != "gid" && ids != "raw") {
    return common::Status::Invalid("invalid_sink_config", "product_ids: gid or raw", "product_ids");
  }
  if (endpoint.empty()) {
    if (shop.ends_with(".myshopify.com")) shop.resize(shop.size() - 14);
    bool valid = !shop.empty();
    for (char c : shop) valid &= (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!valid) {
      return common::Status::Invalid("invalid_sink_config",
                                     "shop: required, the store's myshopify name (a-z, 0-9, -)",
                                     "shop");
    }
    endpoint = "https://" + shop + ".myshopify.com/admin/api/" + version + "/graphql.json";
  }
  auto split = SplitUrl(endpoint);
  if (!split.ok()) return split.status();
  options.endpoint = split->first;
  std::string target = split->second;

  auto token = deps.env(token_env);
  if (!token || token->empty()) {
    return common::Status::Invalid("missing_secret",
                                   "token_env: environment variable " + token_env + " is not set",
                                   "token_env");
  }
  Secrets secrets;
  secrets.Add(*token);
  tools::HeaderList headers{{"X-Shopify-Access-Token", *token},
                            {"Content-Type", "application/json"}};
  const bool gid = ids == "gid";
  BuildFn build = [=](const Update& u) {
    json::array products;
    for (const auto& item : u.items) {
      if (gid && !item.item_id.starts_with("gid://")) {
        products.emplace_back("gid://shopify/Product/" + item.item_id);
      } else {
        products.emplace_back(item.item_id);
      }
    }
    // A list-typed metaobject field takes its value as a JSON text inside a string.
    json::object field{{"key", field_key}, {"value", json::serialize(products)}};
    json::object variables{
        {"handle", json::object{{"type", type}, {"handle", ShopifyHandle(prefix, u.user_id)}}},
        {"metaobject", json::object{{"fields", json::array{field}}}}};
    PushRequest req;
    req.method = "POST";
    req.target = target;
    req.body = json::serialize(
        json::object{{"query", kShopifyUpsertMutation}, {"variables", std::move(variables)}});
    req.headers = headers;
    return req;
  };
  return MakeHttpSink(std::move(options), std::move(secrets), std::move(build), ClassifyShopify,
                      std::move(deps));
}

}  // namespace streamrec::sinks
