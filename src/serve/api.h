// The HTTP API: collector endpoints (Snowplow tp2, GET /i pixel, native JSON), serving
// endpoints, health and metrics. The only place that maps Status codes to HTTP.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "auth/auth_config.h"
#include "catalog/catalog.h"
#include "collector/decode.h"
#include "common/metrics.h"
#include "kpi/kpi_tracker.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "rules/rule_book.h"
#include "scenario/host.h"
#include "serve/http_server.h"
#include "store/store.h"

namespace streamrec::serve {

struct ApiOptions {
  collector::MappingOptions mapping;
  std::vector<std::string> cors_origins;  //!< exact origins, or "*" for any
  size_t default_n = 10;
  size_t max_n = 100;
  auth::AuthConfig auth;
};

//! What the API serves from; all outlive the Api.
struct ApiDeps {
  log::EventLog& log;
  pipeline::Pipeline& pipeline;
  store::Store& store;
  common::Registry& metrics;
  catalog::Catalog& catalog;
  rules::RuleBook& rules;
  auth::KeyStore& keys;
  const auth::UserTokenSecrets& token_secrets;
  auth::RateLimiter& limiter;
  kpi::KpiTracker* kpis = nullptr;  //!< KPIs of served lists; nullptr: /v1/kpis is 404
  scenario::ScenarioHost* scenario = nullptr;  //!< nullptr: /v1/scenario is 404
};

class Api {
 public:
  Api(ApiOptions options, ApiDeps deps);
  ~Api();

  void Handle(Request&& req, const RequestInfo& info, Responder respond);
  //! For requests the server refused itself (oversize, malformed HTTP).
  void OnServerReject(const std::string& reason, const std::string& target);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! HTTP status for a Status code.
http::status HttpStatusFor(common::Code code);
//! `{"error":{"reason","field","message"}}`
std::string ErrorJson(const common::Status& status);

}  // namespace streamrec::serve
