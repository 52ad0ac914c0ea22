#include "serve/api.h"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <optional>

#include "common/clock.h"
#include "kpi/report.h"
#include "kpi/widget_asset.h"
#include "serve/catalog_api.h"
#include "serve/request.h"

namespace streamrec::serve {

namespace json = boost::json;
using common::Code;
using common::Status;

namespace {

constexpr std::string_view kTp2Path = "/com.snowplowanalytics.snowplow/tp2";
constexpr std::string_view kPixelPath = "/i";
constexpr std::string_view kPixelPathLong = "/com.snowplowanalytics.snowplow/i";

// The classic 1x1 transparent GIF answered by tracking pixels.
constexpr unsigned char kPixelGif[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

json::object ErrorObject(const Status& s) {
  json::object e;
  e["reason"] = s.reason;
  if (!s.field.empty()) e["field"] = s.field;
  e["message"] = s.message;
  return e;
}

json::object BadRowObject(const events::BadRow& row) {
  json::object e;
  e["reason"] = row.reason;
  if (!row.field.empty()) e["field"] = row.field;
  e["message"] = row.message;
  return e;
}

json::array ItemsJson(const std::vector<models::ScoredItem>& items) {
  json::array out;
  out.reserve(items.size());
  for (const auto& it : items) {
    json::object o;
    o["item_id"] = it.item_id;
    o["score"] = it.score;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

http::status HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk: return http::status::ok;
    case Code::kInvalidArgument: return http::status::bad_request;
    case Code::kNotFound: return http::status::not_found;
    case Code::kTooLarge: return http::status::payload_too_large;
    case Code::kForbidden: return http::status::forbidden;
    case Code::kUnauthenticated: return http::status::unauthorized;
    case Code::kRateLimited: return http::status::too_many_requests;
    case Code::kUnavailable: return http::status::service_unavailable;
    case Code::kInternal: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

std::string ErrorJson(const Status& status) {
  json::object o;
  o["error"] = ErrorObject(status);
  return json::serialize(o);
}

struct Api::Impl {
  ApiOptions options;
  log::EventLog& log;
  pipeline::Pipeline& pipeline;
  store::Store& store;
  common::Registry& metrics;
  catalog::Catalog& catalog;
  rules::RuleBook& rules;
  auth::KeyStore& keys;
  const auth::UserTokenSecrets& token_secrets;
  auth::RateLimiter& limiter;
  kpi::KpiTracker* kpis;
  scenario::ScenarioHost* scenario_host;
  CatalogApi catalog_api;
  // options.mapping keeping the tracker fields that the scenario version read (made once per
  // version).
  struct RawMapping {
    std::shared_ptr<const scenario::Scenario> scenario;
    collector::MappingOptions mapping;
  };
  std::atomic<std::shared_ptr<const RawMapping>> raw_mapping;
  std::atomic<uint64_t> list_counter{0};

  enum class Source { kTp2, kPixel, kNative };

  Impl(ApiOptions o, ApiDeps d)
      : options(std::move(o)),
        log(d.log),
        pipeline(d.pipeline),
        store(d.store),
        metrics(d.metrics),
        catalog(d.catalog),
        rules(d.rules),
        keys(d.keys),
        token_secrets(d.token_secrets),
        limiter(d.limiter),
        kpis(d.kpis),
        scenario_host(d.scenario),
        catalog_api(d.catalog, d.rules, d.store) {}

  // --- metrics helpers (lookups are cheap next to a request; they take a lock).
  void CountRejected(const std::string& reason, uint64_t n = 1) {
    metrics.GetCounter("streamrec_events_rejected_total", "Events rejected, by reason",
                       {{"reason", reason}})
        .Inc(n);
  }
  void CountAccepted(const char* source, uint64_t n) {
    metrics.GetCounter("streamrec_events_accepted_total", "Events durably accepted, by source",
                       {{"source", source}})
        .Inc(n);
  }
  Responder Timed(const char* route, Responder respond) {
    auto& hist = metrics.GetHistogram("streamrec_http_request_seconds",
                                      "Request latency by route", {{"route", route}});
    int64_t start = common::MonoNs();
    return [this, &hist, start, route, respond = std::move(respond)](Response&& res) {
      hist.Observe(static_cast<double>(common::MonoNs() - start) / 1e9);
      metrics
          .GetCounter("streamrec_http_requests_total", "Requests by route and status",
                      {{"route", route}, {"code", std::to_string(res.result_int())}})
          .Inc();
      respond(std::move(res));
    };
  }

  // --- CORS: the tracker runs in the shop's pages, on other origins.
  bool OriginAllowed(std::string_view origin) const {
    for (const auto& o : options.cors_origins) {
      if (o == "*" || o == origin) return true;
    }
    return false;
  }
  Responder WithCors(const Request& req, Responder respond) {
    auto origin_it = req.find(http::field::origin);
    if (origin_it == req.end() || !OriginAllowed(origin_it->value())) return respond;
    std::string origin(origin_it->value());
    return [origin, respond = std::move(respond)](Response&& res) {
      res.set(http::field::access_control_allow_origin, origin);
      res.set(http::field::access_control_allow_credentials, "true");
      res.set(http::field::vary, "Origin");
      respond(std::move(res));
    };
  }
  void Preflight(const Request& req, const Responder& respond) {
    auto origin = req.find(http::field::origin);
    if (origin == req.end() || !OriginAllowed(origin->value())) {
      return respond(JsonResponse(
          req, http::status::forbidden,
          ErrorJson(Status::Make(Code::kForbidden, "origin_not_allowed",
                                 "origin is not in server.cors_origins", "Origin"))));
    }
    Response res{http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
    auto asked = req.find(http::field::access_control_request_headers);
    res.set(http::field::access_control_allow_headers,
            asked != req.end() ? std::string(asked->value()) : std::string("Content-Type"));
    res.set(http::field::access_control_max_age, "600");
    res.prepare_payload();
    respond(std::move(res));
  }

  // Tracker fields are kept in the log when configured (all of them) or when the running
  // scenario reads them (only those it reads). Valid while the caller holds it: a hot reload may
  // change what the next request keeps.
  std::shared_ptr<const collector::MappingOptions> SnowplowMapping() {
    const std::shared_ptr<const collector::MappingOptions> configured(
        std::shared_ptr<const void>(), &options.mapping);  // not owned: lives as long as this
    auto runner = scenario_host && !options.mapping.keep_raw ? scenario_host->Current() : nullptr;
    if (!runner || !runner->scenario().reads_raw()) return configured;
    auto cached = raw_mapping.load(std::memory_order_acquire);
    if (!cached || cached->scenario != runner->scenario_ptr()) {
      auto made = std::make_shared<RawMapping>(RawMapping{runner->scenario_ptr(), options.mapping});
      made->mapping.keep_raw = true;
      made->mapping.raw_fields = runner->scenario().raw_fields();
      raw_mapping.store(made, std::memory_order_release);
      cached = std::move(made);
    }
    return {cached, &cached->mapping};
  }

  void RespondError(const Request& req, const Responder& respond, const Status& s) {
    respond(JsonResponse(req, HttpStatusFor(s.code), ErrorJson(s)));
  }

  // --- collector
  void Ingest(Request&& req, Responder respond, Source source) {
    int64_t now = common::NowMs();
    common::Result<events::DecodeOutput> decoded = Status::Internal("unreachable");
    std::string_view query;
    if (source == Source::kPixel) {
      std::string_view target(req.target().data(), req.target().size());
      auto q = target.find('?');
      query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
      decoded = collector::DecodeSnowplowQuery(query, now, *SnowplowMapping());
    } else if (source == Source::kTp2) {
      decoded = collector::DecodeSnowplowPost(req.body(), now, *SnowplowMapping());
    } else {
      decoded = collector::DecodeNativeJson(req.body(), now, options.mapping);
    }
    if (!decoded.ok()) {
      const Status& s = decoded.status();
      CountRejected(s.reason);
      events::BadRow row{s.reason, s.field, s.message,
                         source == Source::kPixel ? std::string(query) : req.body(), {}};
      (void)store.PutBadRows({row}, now);
      return RespondError(req, respond, s);
    }
    auto out = std::move(decoded).value();
    for (const auto& row : out.bad_rows) CountRejected(row.reason);
    if (!out.bad_rows.empty()) (void)store.PutBadRows(out.bad_rows, now);

    json::array rejected;
    for (const auto& row : out.bad_rows) rejected.push_back(BadRowObject(row));
    if (out.events.empty()) {
      if (out.bad_rows.empty()) {
        return respond(JsonResponse(req, http::status::ok, R"({"accepted":0,"duplicates":0})"));
      }
      json::object body;
      body["error"] = BadRowObject(out.bad_rows.front());
      body["rejected"] = std::move(rejected);
      return respond(JsonResponse(req, http::status::bad_request, json::serialize(body)));
    }

    const char* source_name =
        source == Source::kTp2 ? "tp2" : source == Source::kPixel ? "pixel" : "native";
    // The response is built when the log says the events are durable.
    auto head = std::make_shared<Request>();
    head->version(req.version());
    head->keep_alive(req.keep_alive());
    log.AppendAsync(std::move(out.events),
                    [this, head, source, source_name, respond = std::move(respond),
                     rejected = std::move(rejected)](common::Result<log::AppendResult> r) mutable {
                      if (!r.ok()) return RespondError(*head, respond, r.status());
                      CountAccepted(source_name, r->appended);
                      if (source == Source::kPixel) {
                        Response res{http::status::ok, head->version()};
                        res.set(http::field::content_type, "image/gif");
                        res.set(http::field::cache_control, "no-cache, no-store, must-revalidate");
                        res.keep_alive(head->keep_alive());
                        res.body().assign(reinterpret_cast<const char*>(kPixelGif),
                                          sizeof(kPixelGif));
                        res.prepare_payload();
                        return respond(std::move(res));
                      }
                      json::object body;
                      body["accepted"] = r->appended;
                      body["duplicates"] = r->duplicates;
                      if (!rejected.empty()) body["rejected"] = std::move(rejected);
                      respond(JsonResponse(*head, http::status::ok, json::serialize(body)));
                    });
  }

  std::string TenantOf(const Target& t) const {
    auto tenant = t.Param("tenant");
    return tenant && !tenant->empty() ? *tenant : options.mapping.default_tenant;
  }

  // --- serving
  //! A served list's id, unique per server run and sortable by time; the widget echoes it
  //! back with impressions and clicks so that they can be attributed to this list.
  std::string NextListId() {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%llx-%llx",
                  static_cast<unsigned long long>(common::NowMs()),
                  static_cast<unsigned long long>(list_counter.fetch_add(1)));
    return buf;
  }

  //! The model's list through the placement's business rules (when any are set).
  common::Result<rules::Ruled> ApplyRules(const rules::RuleSet& ruleset,
                                          const std::string& tenant, const std::string& user,
                                          const std::string& placement, const Target& t,
                                          const pipeline::RecList& recs, size_t n) {
    rules::RuleContext context;
    context.tenant = tenant;
    context.placement = placement;
    context.now_ms = common::NowMs();
    if (auto item = t.Param("context_item"); item && !item->empty()) {
      context.context_item_id = *item;
    }
    if (auto state = pipeline.User(tenant, user); state.ok()) {
      context.history.reserve(state->history.size());
      for (const auto& h : state->history) {
        context.history.push_back({h.item_id, h.type, h.timestamp_ms});
      }
    }
    // Rules may drop many candidates: the fallback tops the list up through the same filters.
    auto fallback = pipeline.Popular(tenant, 4 * n);
    return ruleset.Apply(recs.items, recs.model, context, catalog, fallback);
  }

  void Recommendations(const Request& req, const Target& t, const Responder& respond) {
    auto user = t.Param("user_id");
    if (!user || user->empty()) {
      return RespondError(req, respond,
                          Status::Invalid("missing_parameter", "user_id is required", "user_id"));
    }
    auto n = ParseCount(t, "n", options.default_n, 1, options.max_n);
    if (!n.ok()) return RespondError(req, respond, n.status());
    const std::string tenant = TenantOf(t);
    const std::string placement = t.Param("placement").value_or("default");
    const bool explain = ParseFlag(t, "explain");
    auto ruleset = rules.Find(tenant, placement);
    // With rules, ask the model for more candidates than shown: filters remove some.
    auto recs = pipeline.Recommendations(tenant, *user, ruleset ? std::min(4 * *n, size_t{200}) : *n);
    if (!recs.ok()) return RespondError(req, respond, recs.status());

    json::object body;
    body["user_id"] = *user;
    body["tenant"] = tenant;
    body["placement"] = placement;
    body["list_id"] = NextListId();
    json::array items;
    auto add_item = [&](const std::string& id, double score,
                        const std::vector<std::string>* reasons) {
      json::object o;
      o["item_id"] = id;
      o["score"] = score;
      if (auto item = catalog.Get(tenant, id)) {
        for (auto& [k, v] : CatalogFieldsJson(*item)) o[k] = v;
      }
      if (explain && reasons) o["reasons"] = json::value_from(*reasons);
      items.push_back(std::move(o));
    };
    if (ruleset) {
      auto ruled = ApplyRules(*ruleset, tenant, *user, placement, t, *recs, *n);
      if (!ruled.ok()) return RespondError(req, respond, ruled.status());
      for (const auto& r : ruled->items) add_item(r.item_id, r.score, &r.reasons);
      body["rules"] = json::value_from(ruled->applied_rules);
    } else {
      for (const auto& r : recs->items) add_item(r.item_id, r.score, nullptr);
    }
    body["items"] = std::move(items);
    body["model"] = recs->model;
    body["generated_at"] = recs->generated_at_ms;
    body["last_event_at"] = recs->last_event_ms;
    respond(JsonResponse(req, http::status::ok, json::serialize(body)));
  }

  void Similar(const Request& req, const Target& t, const Responder& respond) {
    // /v1/items/{id}/similar
    const std::string& item = t.segments[2];
    auto n = ParseCount(t, "n", options.default_n, 1, options.max_n);
    if (!n.ok()) return RespondError(req, respond, n.status());
    std::string tenant = TenantOf(t);
    auto similar = pipeline.Similar(tenant, item, *n);
    if (!similar.ok()) return RespondError(req, respond, similar.status());
    json::object body;
    body["item_id"] = item;
    body["tenant"] = tenant;
    body["items"] = ItemsJson(*similar);
    body["model"] = "covisitation";
    respond(JsonResponse(req, http::status::ok, json::serialize(body)));
  }

  void History(const Request& req, const Target& t, const Responder& respond) {
    // /v1/users/{id}/history
    const std::string& user = t.segments[2];
    std::string tenant = TenantOf(t);
    auto state = pipeline.User(tenant, user);
    if (!state.ok()) return RespondError(req, respond, state.status());
    json::array history;
    for (const auto& h : state->history) {
      json::object o;
      o["item_id"] = h.item_id;
      o["type"] = std::string(events::EventTypeName(h.type));
      o["timestamp"] = h.timestamp_ms;
      history.push_back(std::move(o));
    }
    json::object session;
    session["id"] = state->session_id;
    session["start"] = state->session_start_ms;
    session["last_event"] = state->last_event_ms;
    session["events"] = state->session_events;
    session["count"] = state->sessions;
    json::object body;
    body["user_id"] = user;
    body["tenant"] = tenant;
    body["session"] = std::move(session);
    body["history"] = std::move(history);
    respond(JsonResponse(req, http::status::ok, json::serialize(body)));
  }

  // --- GDPR
  static json::object EventJson(const log::LoggedEvent& e) {
    json::object o;
    o["partition"] = e.partition;
    o["seq"] = e.seq;
    o["event_id"] = e.event.event_id;
    o["type"] = std::string(events::EventTypeName(e.event.type));
    o["item_id"] = e.event.item_id;
    o["timestamp"] = e.event.timestamp_ms;
    o["collector_ms"] = e.event.collector_ms;
    o["session_id"] = e.event.session_id;
    o["properties"] = e.event.properties;
    if (!e.event.raw.empty()) o["raw"] = e.event.raw;  // the tracker fields, when kept
    return o;
  }

  //! Everything stored about a user: state, list, log events, bad rows naming them.
  void Export(const Request& req, const Target& t, const Responder& respond) {
    const std::string& user = t.segments[2];
    std::string tenant = TenantOf(t);
    json::object body;
    body["user_id"] = user;
    body["tenant"] = tenant;
    if (auto state = pipeline.User(tenant, user); state.ok()) {
      json::array history;
      for (const auto& h : state->history) {
        history.push_back({{"item_id", h.item_id},
                           {"type", std::string(events::EventTypeName(h.type))},
                           {"timestamp", h.timestamp_ms}});
      }
      body["history"] = std::move(history);
      body["session"] = {{"id", state->session_id},
                         {"start", state->session_start_ms},
                         {"last_event", state->last_event_ms},
                         {"events", state->session_events},
                         {"count", state->sessions}};
    }
    if (auto recs = pipeline.StoredRecommendations(tenant, user); recs.ok() && *recs) {
      body["recommendations"] = {{"items", ItemsJson((*recs)->items)},
                                 {"model", (*recs)->model},
                                 {"generated_at", (*recs)->generated_at_ms}};
    }
    auto logged = log.EventsOf(tenant, user);
    if (!logged.ok()) return RespondError(req, respond, logged.status());
    json::array events_json;
    for (const auto& e : *logged) events_json.push_back(EventJson(e));
    body["events"] = std::move(events_json);
    json::array bad_rows;
    for (const auto& raw : store.BadRowsMentioning(user)) bad_rows.push_back(json::parse(raw));
    body["bad_rows"] = std::move(bad_rows);
    respond(JsonResponse(req, http::status::ok, json::serialize(body)));
  }

  //! Erases the user from the log, state, stored list and bad rows, then checks that
  //! nothing is left.
  void Erase(const Request& req, const Target& t, const Responder& respond) {
    const std::string& user = t.segments[2];
    std::string tenant = TenantOf(t);
    auto redacted = log.Redact(tenant, user);
    if (!redacted.ok()) return RespondError(req, respond, redacted.status());
    if (auto s = pipeline.ForgetUser(tenant, user); !s.ok()) return RespondError(req, respond, s);
    if (auto s = kpis ? kpis->ForgetUser(tenant, user) : Status::Ok(); !s.ok()) {
      return RespondError(req, respond, s);
    }
    auto bad_rows = store.EraseBadRowsMentioning(user);
    if (!bad_rows.ok()) return RespondError(req, respond, bad_rows.status());

    auto left_events = log.EventsOf(tenant, user);
    auto left_recs = pipeline.StoredRecommendations(tenant, user);
    bool verified = left_events.ok() && left_events->empty() && left_recs.ok() && !*left_recs &&
                    !pipeline.User(tenant, user).ok() && store.BadRowsMentioning(user).empty();
    metrics.GetCounter("streamrec_gdpr_erasures_total", "GDPR erasures performed").Inc();
    json::object body;
    body["user_id"] = user;
    body["tenant"] = tenant;
    body["erased"] = {{"events", *redacted}, {"bad_rows", *bad_rows}, {"state", true}};
    body["verified"] = verified;
    respond(JsonResponse(req, verified ? http::status::ok : http::status::internal_server_error,
                         json::serialize(body)));
  }

  // --- KPIs and the storefront widget (src/kpi, docs/KPIS.md, docs/WIDGET.md)
  //! GET /v1/kpis?tenant=&from=&to=&placement=&group_by=
  void Kpis(const Request& req, const Target& t, const Responder& respond) {
    if (!kpis) {
      return RespondError(req, respond,
                          Status::Make(Code::kNotFound, "no_route", "KPIs are off", "path"));
    }
    auto query = kpi::MakeQuery(TenantOf(t), t.Param("from"), t.Param("to"), t.Param("placement"),
                                t.Param("group_by"), common::NowMs());
    if (!query.ok()) return RespondError(req, respond, query.status());
    respond(JsonResponse(req, http::status::ok, kpi::ReportJson(kpis->Query(*query))));
  }

  //! GET /widget.js: the embedded widget; shops' pages load it cross-origin by <script>.
  void WidgetJs(const Request& req, const Responder& respond) {
    Response res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::content_type, "text/javascript; charset=utf-8");
    res.set(http::field::cache_control, "public, max-age=300");
    res.set(http::field::etag, kpi::WidgetJsEtag());
    auto match = req.find(http::field::if_none_match);
    if (match != req.end() && match->value() == kpi::WidgetJsEtag()) {
      res.result(http::status::not_modified);
    } else if (req.method() != http::verb::head) {
      res.body() = kpi::WidgetJs();
    }
    res.prepare_payload();
    respond(std::move(res));
  }

  void BadRows(const Request& req, const Target& t, const Responder& respond) {
    auto n = ParseCount(t, "n", 20, 1, 1000);
    if (!n.ok()) return RespondError(req, respond, n.status());
    json::array rows;
    for (const auto& raw : store.RecentBadRows(*n)) {
      boost::system::error_code ec;
      auto v = json::parse(raw, ec);
      if (!ec) rows.push_back(std::move(v));
    }
    json::object body;
    body["bad_rows"] = std::move(rows);
    respond(JsonResponse(req, http::status::ok, json::serialize(body)));
  }

  void Health(const Request& req, const Responder& respond) {
    json::object body;
    body["status"] = "ok";
    body["processed"] = pipeline.processed();
    respond(JsonResponse(req, http::status::ok, json::serialize(body)));
  }

  void Metrics(const Request& req, const Responder& respond) {
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.keep_alive(req.keep_alive());
    res.body() = metrics.RenderPrometheus();
    res.prepare_payload();
    respond(std::move(res));
  }

  //! The API-key scope an admin endpoint needs; nullopt for public endpoints.
  static std::optional<std::string> AdminScope(http::verb method, const std::vector<std::string>& seg,
                                               const std::string& path) {
    const bool write = method != http::verb::get && method != http::verb::head;
    if (seg.size() >= 2 && seg[0] == "v1") {
      if (seg[1] == "items" && seg.size() <= 3) return write ? "catalog:write" : "catalog:read";
      if (seg[1] == "rules") return write ? "rules:write" : "rules:read";
      if (seg[1] == "keys") return "admin";
      if (seg[1] == "scenario") return write ? "scenario:write" : "scenario:read";
      if (seg[1] == "users" && (seg.size() == 3 || (seg.size() == 4 && seg[3] == "export"))) {
        return "gdpr";
      }
    }
    if (path == "/v1/bad-rows") return "admin";
    if (path == "/v1/kpis") return "kpis:read";
    return std::nullopt;
  }

  Status CheckAdmin(const Request& req, const std::string& tenant, const std::string& scope) {
    if (!options.auth.admin_keys_enabled) return Status::Ok();
    auto header = req.find(http::field::authorization);
    std::string_view presented;
    if (header != req.end()) {
      presented = std::string_view(header->value().data(), header->value().size());
    } else if (auto key = req.find("X-Api-Key"); key != req.end()) {
      presented = std::string_view(key->value().data(), key->value().size());
    }
    return auth::CheckAdmin(keys, presented, tenant, scope);
  }

  //! Public reads: a per-client rate limit, and a user token where the config wants one.
  //! `customer_id=` names a logged-in customer; `user_id=` an anonymous device id.
  Status CheckPublicRead(const Request& req, const Target& t, const RequestInfo& info,
                         const std::string& tenant, const std::string& user, bool logged_in) {
    if (!limiter.Allow(info.peer, common::MonoNs())) {
      return Status::Make(Code::kRateLimited, "rate_limited",
                          "too many requests from this client; slow down", "client");
    }
    std::string token = t.Param("token").value_or("");
    if (auto h = req.find("X-User-Token"); token.empty() && h != req.end()) {
      token = std::string(h->value().data(), h->value().size());
    }
    return auth::CheckUserRead(options.auth, token_secrets, tenant, user, token, logged_in,
                               common::NowMs());
  }

  void Route(Request&& req, const RequestInfo& info, const Responder& respond_in) {
    auto target = ParseTarget(std::string_view(req.target().data(), req.target().size()));
    if (!target.ok()) return RespondError(req, respond_in, target.status());
    Target& t = *target;
    const auto method = req.method();
    const auto& seg = t.segments;

    if (method == http::verb::options) return Preflight(req, WithCors(req, respond_in));
    Responder respond = WithCors(req, respond_in);

    if (t.path == kTp2Path) {
      if (method != http::verb::post) return MethodNotAllowed(req, respond, "POST");
      return Ingest(std::move(req), Timed("tp2", std::move(respond)), Source::kTp2);
    }
    if (t.path == kPixelPath || t.path == kPixelPathLong) {
      if (method != http::verb::get) return MethodNotAllowed(req, respond, "GET");
      return Ingest(std::move(req), Timed("pixel", std::move(respond)), Source::kPixel);
    }
    if (t.path == "/v1/events") {
      if (method != http::verb::post) return MethodNotAllowed(req, respond, "POST");
      return Ingest(std::move(req), Timed("events", std::move(respond)), Source::kNative);
    }

    const std::string tenant = TenantOf(t);
    if (auto scope = AdminScope(method, seg, t.path)) {
      // Rules without ?tenant= span tenants: only an all-tenant key may change them.
      const bool all_tenants = seg.size() >= 2 && seg[1] == "rules" && !t.Param("tenant");
      if (auto s = CheckAdmin(req, all_tenants ? std::string() : tenant, *scope); !s.ok()) {
        metrics.GetCounter("streamrec_admin_denied_total", "Admin requests refused",
                           {{"code", common::CodeName(s.code)}})
            .Inc();
        return RespondError(req, respond, s);
      }
      if (t.path == "/v1/kpis") return Kpis(req, t, Timed("kpis", std::move(respond)));
      if (catalog_api.Handle(req, t, tenant, respond)) return;
      if (seg.size() >= 2 && seg[1] == "keys") return Keys(req, t, respond);
      if (seg.size() >= 2 && seg[1] == "scenario") return Scenario(req, t, respond);
      if (seg.size() == 3) {
        if (method != http::verb::delete_) return MethodNotAllowed(req, respond, "DELETE");
        return Erase(req, t, Timed("erase", std::move(respond)));
      }
      if (seg.size() == 4) return Export(req, t, Timed("export", std::move(respond)));
      return BadRows(req, t, respond);
    }
    if (method != http::verb::get && method != http::verb::head) {
      return MethodNotAllowed(req, respond, "GET");
    }
    const bool recommendations = t.path == "/v1/recommendations";
    const bool history = seg.size() == 4 && seg[0] == "v1" && seg[1] == "users" && seg[3] == "history";
    if (recommendations || history) {
      // A logged-in customer is asked for as customer_id=; the handlers read user_id.
      auto customer = t.Param("customer_id");
      std::string user = history ? seg[2] : customer ? *customer : t.Param("user_id").value_or("");
      if (recommendations && customer) t.params.emplace_back("user_id", *customer);
      if (auto s = CheckPublicRead(req, t, info, tenant, user, customer.has_value()); !s.ok()) {
        return RespondError(req, respond, s);
      }
      if (history) return History(req, t, Timed("history", std::move(respond)));
      // Timed apart: a placement's lists go through rules and catalog lookups.
      const char* route = t.Param("placement") ? "recommendations_placement" : "recommendations";
      return Recommendations(req, t, Timed(route, std::move(respond)));
    }
    if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "items" && seg[3] == "similar") {
      if (!limiter.Allow(info.peer, common::MonoNs())) {
        return RespondError(req, respond,
                            Status::Make(Code::kRateLimited, "rate_limited",
                                         "too many requests from this client; slow down", "client"));
      }
      return Similar(req, t, Timed("similar", std::move(respond)));
    }
    if (t.path == "/widget.js") return WidgetJs(req, respond);
    if (t.path == "/healthz") return Health(req, respond);
    if (t.path == "/metrics") return Metrics(req, respond);
    RespondError(req, respond,
                 Status::Make(Code::kNotFound, "no_route", "no such endpoint: " + t.path, "path"));
  }

  //! GET /v1/scenario: the running graph with live per-step counts; PUT loads a new version
  //! (all errors answered, the running one kept on failure); POST /v1/scenario/rollback?version=N;
  //! GET /v1/scenario/versions lists the kept versions, newest first.
  void Scenario(const Request& req, const Target& t, const Responder& respond) {
    if (!scenario_host) {
      return RespondError(req, respond,
                          Status::Make(Code::kNotFound, "no_route", "no scenarios here", "path"));
    }
    const auto method = req.method();
    if (method == http::verb::get && t.segments.size() == 3 && t.segments[2] == "versions") {
      json::array versions;
      for (const auto& v : scenario_host->History()) {
        versions.push_back({{"name", v.name},
                            {"version", v.version},
                            {"loaded_at_ms", v.loaded_at_ms},
                            {"current", v.current}});
      }
      return respond(JsonResponse(req, http::status::ok,
                                  json::serialize(json::object{{"versions", versions}})));
    }
    if (method == http::verb::put || method == http::verb::post) {
      Status s;
      if (t.segments.size() == 3 && t.segments[2] == "rollback") {
        auto version = ParseCount(t, "version", 0, 1, SIZE_MAX);
        if (!version.ok()) return RespondError(req, respond, version.status());
        s = scenario_host->Rollback(static_cast<int64_t>(*version));
      } else {
        s = scenario_host->Load(req.body());
      }
      if (!s.ok()) return RespondError(req, respond, s);
    }
    std::string graph =
        scenario_host->Current() ? scenario_host->GraphJson() : R"({"scenario":null})";
    respond(JsonResponse(req, http::status::ok, std::move(graph)));
  }

  //! POST /v1/keys {tenant, scopes, name} -> the key, shown once; GET /v1/keys lists;
  //! POST /v1/keys/{id}/rotate; DELETE /v1/keys/{id} revokes.
  void Keys(const Request& req, const Target& t, const Responder& respond) {
    const auto& seg = t.segments;
    const auto method = req.method();
    if (seg.size() == 2 && method == http::verb::post) {
      boost::system::error_code ec;
      auto body = json::parse(req.body(), ec);
      if (ec || !body.is_object()) {
        return RespondError(req, respond,
                            Status::Invalid("invalid_json", "body must be a JSON object", "body"));
      }
      const auto& o = body.as_object();
      std::vector<std::string> scopes;
      if (auto* sc = o.if_contains("scopes"); sc && sc->is_array()) {
        for (const auto& v : sc->as_array()) {
          if (v.is_string()) scopes.emplace_back(v.as_string());
        }
      }
      auto str = [&](const char* k, const char* d) {
        auto* v = o.if_contains(k);
        return v && v->is_string() ? std::string(v->as_string()) : std::string(d);
      };
      auto key = keys.Create(str("tenant", ""), scopes, str("name", ""));
      if (!key.ok()) return RespondError(req, respond, key.status());
      json::object out;
      out["key"] = *key;
      out["note"] = "store this key now: it is not shown again";
      return respond(JsonResponse(req, http::status::created, json::serialize(out)));
    }
    if (seg.size() == 2) {
      json::array list;
      for (const auto& k : keys.List()) {
        list.push_back({{"key_id", k.key_id},
                        {"tenant", k.tenant},
                        {"scopes", json::value_from(k.scopes)},
                        {"name", k.name},
                        {"created_ms", k.created_ms},
                        {"revoked", k.revoked},
                        {"rotated_ms", k.rotated_ms}});
      }
      return respond(JsonResponse(req, http::status::ok, json::serialize(json::object{{"keys", list}})));
    }
    if (seg.size() == 4 && seg[3] == "rotate" && method == http::verb::post) {
      auto key = keys.Rotate(seg[2]);
      if (!key.ok()) return RespondError(req, respond, key.status());
      return respond(JsonResponse(req, http::status::ok,
                                  json::serialize(json::object{{"key", *key}})));
    }
    if (seg.size() == 3 && method == http::verb::delete_) {
      if (auto s = keys.Revoke(seg[2]); !s.ok()) return RespondError(req, respond, s);
      return respond(JsonResponse(req, http::status::ok, R"({"revoked":true})"));
    }
    RespondError(req, respond, Status::Make(Code::kNotFound, "no_route", "no such key operation", "path"));
  }

  void MethodNotAllowed(const Request& req, const Responder& respond, const char* allowed) {
    auto res = JsonResponse(req, http::status::method_not_allowed,
                            ErrorJson(Status::Make(Code::kInvalidArgument, "method_not_allowed",
                                                   std::string("use ") + allowed, "method")));
    res.set(http::field::allow, allowed);
    respond(std::move(res));
  }
};

Api::Api(ApiOptions options, ApiDeps deps)
    : impl_(std::make_unique<Impl>(std::move(options), deps)) {}

Api::~Api() = default;

void Api::Handle(Request&& req, const RequestInfo& info, Responder respond) {
  try {
    impl_->Route(std::move(req), info, respond);
  } catch (const std::exception& e) {
    // A bug must not take the server down; the client gets a 500 it can report.
    Request head;
    respond(JsonResponse(head, http::status::internal_server_error,
                         ErrorJson(Status::Internal(e.what()))));
  }
}

void Api::OnServerReject(const std::string& reason, const std::string& target) {
  impl_->CountRejected(reason);
  events::BadRow row{reason, "body", "request refused by the HTTP layer", target, {}};
  (void)impl_->store.PutBadRows({row}, common::NowMs());
}

}  // namespace streamrec::serve
