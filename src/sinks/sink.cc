#include "sinks/sink.h"

#include <cstdlib>

#include "sinks/http_sink.h"
#include "sinks/log_sink.h"
#include "sinks/shopify.h"
#include "sinks/template.h"

namespace streamrec::sinks {
namespace {

common::Result<std::unique_ptr<Sink>> MakeWebhookSink(const boost::json::object& config,
                                                      Deps deps) {
  ConfigReader r(config, "");
  r.OnlyKeys({"type", "name", "url", "method", "headers", "body", "timeout_ms", "senders", "retry",
              "coalesce", "rate", "dead_letter", "stop_deadline_ms"});
  HttpSinkOptions options;
  options.type = "webhook";
  options.coalesce.interval_ns = 10'000'000'000;  // 10 s
  if (auto s = ReadHttpSinkOptions(config, options); !s.ok()) return s;
  std::string url = r.String("url", "");
  std::string method = r.String("method", "POST");
  std::string body = r.String("body", "{\"user_id\": {{user_id}}, \"items\": {{items_json}}}");
  const boost::json::object* headers = r.Object("headers");
  if (!r.status().ok()) return r.status();
  if (url.empty()) return common::Status::Invalid("invalid_sink_config", "url: required", "url");
  if (method != "POST" && method != "PUT" && method != "PATCH") {
    return common::Status::Invalid("invalid_sink_config", "method: POST, PUT or PATCH", "method");
  }
  auto split = SplitUrl(url);
  if (!split.ok()) return split.status();
  options.endpoint = split->first;

  Secrets secrets;
  auto target = Template::Parse(split->second, Template::Kind::kUrl, deps.env, secrets, "url");
  if (!target.ok()) return target.status();
  auto body_t = Template::Parse(body, Template::Kind::kJsonBody, deps.env, secrets, "body");
  if (!body_t.ok()) return body_t.status();
  std::vector<std::pair<std::string, Template>> header_ts;
  if (headers) {
    for (const auto& [name, value] : *headers) {
      std::string field = "headers." + std::string(name);
      if (!value.is_string()) {
        return common::Status::Invalid("invalid_sink_config", field + ": expected a string", field);
      }
      auto t =
          Template::Parse(value.as_string(), Template::Kind::kHeader, deps.env, secrets, field);
      if (!t.ok()) return t.status();
      header_ts.emplace_back(std::string(name), std::move(*t));
    }
  }
  BuildFn build = [method, target = std::move(*target), body_t = std::move(*body_t),
                   header_ts = std::move(header_ts)](const Update& u) {
    PushRequest req;
    req.method = method;
    req.target = target.Render(u);
    req.body = body_t.Render(u);
    for (const auto& [name, t] : header_ts) req.headers.emplace_back(name, t.Render(u));
    return req;
  };
  ClassifyFn classify = [](const tools::HttpResponse& res, TokenBucket&, double) {
    return ClassifyHttp(res);
  };
  return MakeHttpSink(std::move(options), std::move(secrets), std::move(build), std::move(classify),
                      std::move(deps));
}

}  // namespace

common::Result<std::unique_ptr<Sink>> MakeSink(const boost::json::object& config, Deps deps) {
  if (!deps.env) {
    deps.env = [](std::string_view name) -> std::optional<std::string> {
      const char* v = std::getenv(std::string(name).c_str());
      if (!v) return std::nullopt;
      return std::string(v);
    };
  }
  auto* type = config.if_contains("type");
  if (!type || !type->is_string()) {
    return common::Status::Invalid("invalid_sink_config",
                                   "type: required, one of webhook, shopify, log", "type");
  }
  std::string_view t = type->as_string();
  if (t == "webhook") return MakeWebhookSink(config, std::move(deps));
  if (t == "shopify") return MakeShopifySink(config, std::move(deps));
  if (t == "log") return MakeLogSink(config, std::move(deps));
  return common::Status::Invalid(
      "invalid_sink_config",
      "type: unknown sink type '" + std::string(t) + "' (webhook, shopify, log)", "type");
}

}  // namespace streamrec::sinks
