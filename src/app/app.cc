#include "app/app.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "app/scenario_wiring.h"
#include "registry/model_host.h"
#include "common/clock.h"

namespace streamrec::app {

App::App(Config config) : config_(std::move(config)) {}

App::~App() { Stop(); }

common::Status App::Start() {
  auto store = store::Store::Open(config_.data_dir + "/db", config_.storage);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();

  auto log = log::EventLog::Open(*store_, config_.log, metrics_);
  if (!log.ok()) return log.status();
  log_ = std::move(log).value();

  auto pipeline =
      pipeline::Pipeline::Open(*store_, *log_, config_.pipeline, config_.models, metrics_);
  if (!pipeline.ok()) return pipeline.status();
  pipeline_ = std::move(pipeline).value();
  kpis_ = std::make_unique<kpi::KpiTracker>(*store_, kpi::KpiOptions{});
  if (auto s = kpis_->Restore(); !s.ok()) return s;
  pipeline_->AddObserver(kpis_->Observer());
  for (const auto& sink_config : config_.sinks) {
    auto sink = sinks::MakeSink(sink_config, {.metrics = &metrics_});
    if (!sink.ok()) return sink.status();
    sinks_.push_back(std::move(sink).value());
  }
  if (!sinks_.empty()) {
    pipeline_->AddListObserver([this](const std::string& tenant, const std::string& user,
                                      const pipeline::RecList& list) {
      sinks::Update update{tenant, user, list.items, list.model, list.generated_at_ms};
      for (auto& sink : sinks_) sink->Push(update);
    });
  }
  scenario_models_ = std::make_unique<scenario::ItemModelRegistry>(pipeline_->item_model());
  scenario_sinks_ = std::make_unique<scenario::SinkRegistry>(ServerSinks(metrics_));
  scenario_ = std::make_unique<scenario::ScenarioHost>(
      scenario_models_.get(), scenario_sinks_.get(), scenario::HostOptions{.metrics = &metrics_});
  if (!config_.scenario_file.empty()) {
    std::ifstream in(config_.scenario_file);
    if (!in) {
      return common::Status::Invalid("invalid_config", "cannot read " + config_.scenario_file,
                                     "scenario_file");
    }
    std::stringstream text;
    text << in.rdbuf();
    if (auto s = scenario_->Load(text.str()); !s.ok()) return s;
  }
  // The scenario sees each event once it is applied (worker thread); its windows live in
  // memory and are rebuilt at start from the log's recent events. With a `store` sink its lists
  // are the served ones.
  pipeline_->AddObserver(ScenarioObserver(*scenario_));
  if (auto current = scenario_->Current()) {
    pipeline_->AddWarmupObserver(ScenarioWarmup(*scenario_), current->scenario().warmup_ms());
  }
  if (!config_.serve_model.empty()) {
    auto registry = registry::Registry::Open(config_.model_registry.empty()
                                                 ? config_.data_dir + "/models"
                                                 : config_.model_registry);
    if (!registry.ok()) return registry.status();
    auto host = registry::ModelHost::Open(
        std::move(registry).value(), config_.serve_model,
        {.b_version = config_.ab_version, .b_percent = config_.ab_percent});
    if (!host.ok()) return host.status();
    // Promotions in the registry are picked up by the host's poll; co-visitation fills in.
    pipeline_->SetRecommender(std::move(host).value());
  }
  if (auto s = pipeline_->Start(); !s.ok()) return s;

  catalog_ = std::make_unique<catalog::Catalog>(*store_);
  rules_ = std::make_unique<rules::RuleBook>();
  if (auto s = rules_->Restore(*store_); !s.ok()) return s;
  if (!config_.rules_file.empty()) {
    std::ifstream in(config_.rules_file);
    if (!in) {
      return common::Status::Invalid("invalid_config", "cannot read " + config_.rules_file,
                                     "rules_file");
    }
    std::stringstream text;
    text << in.rdbuf();
    if (auto s = rules_->LoadYaml(text.str()); !s.ok()) return s;
  }

  const auto& auth = config_.api.auth;
  auto keys = auth::KeyStore::Open(*store_, {.rotation_grace_ms = auth.key_rotation_grace_ms},
                                   &metrics_);
  if (!keys.ok()) return keys.status();
  keys_ = std::move(keys).value();
  if (auto s = auth::LoadBootstrapKey(*keys_, auth); !s.ok()) return s;
  auto secrets = auth::LoadUserTokenSecrets(auth);
  if (!secrets.ok()) return secrets.status();
  token_secrets_ = std::move(secrets).value();
  if (!auth.admin_keys_enabled) {
    spdlog::warn("auth.admin_keys_enabled is false: catalog, rules, GDPR and key endpoints are "
                 "open to anyone who can reach this server");
  } else if (keys_->size() == 0) {
    spdlog::warn("no API keys yet: set {} to create the first admin key", auth.admin_key_env);
  }
  limiter_ = std::make_unique<auth::RateLimiter>(auth.rate_limit, &metrics_, "public");

  api_ = std::make_unique<serve::Api>(
      config_.api, serve::ApiDeps{*log_, *pipeline_, *store_, metrics_, *catalog_, *rules_,
                                  *keys_, token_secrets_, *limiter_, kpis_.get(),
                                  scenario_.get()});
  server_ = std::make_unique<serve::HttpServer>(
      config_.server,
      [this](serve::Request&& req, const serve::RequestInfo& info, serve::Responder respond) {
        api_->Handle(std::move(req), info, std::move(respond));
      },
      [this](const std::string& reason, const std::string& target) {
        api_->OnServerReject(reason, target);
      });
  if (auto s = server_->Start(); !s.ok()) return s;

  metrics_.AddGaugeCallback("streamrec_store_bytes", "Approximate RocksDB bytes (SST + memtables)",
                            {}, [this] { return static_cast<double>(store_->ApproximateBytes()); },
                            this);
  // Each user has a state and a list in the state family (plus a few offsets).
  metrics_.AddGaugeCallback("streamrec_state_users_estimate", "Users with stored state (estimate)",
                            {}, [this] { return store_->EstimateKeys(store::Cf::kState) / 2.0; },
                            this);
  metrics_.AddGaugeCallback("streamrec_kpi_memory_bytes",
                            "Estimated memory of KPI aggregates and cached attribution state", {},
                            [this] { return static_cast<double>(kpis_->MemoryBytes()); }, this);
  housekeeping_ = std::thread([this] { Housekeeping(); });
  started_ = true;
  return common::Status::Ok();
}

void App::Housekeeping() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(60), [this] { return stopping_; })) {
    lock.unlock();
    int64_t now = common::NowMs();
    auto offsets = pipeline_->ConsumerOffsets();
    if (auto s = log_->EnforceRetention(now, offsets); !s.ok()) {
      spdlog::warn("log retention failed: {}", s.ToString());
    }
    if (auto s = store_->TrimBadRows(now - config_.bad_rows_retention_ms); !s.ok()) {
      spdlog::warn("bad-row retention failed: {}", s.ToString());
    }
    if (auto s = kpis_->Trim(now); !s.ok()) spdlog::warn("kpi retention failed: {}", s.ToString());
    lock.lock();
  }
}

void App::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (housekeeping_.joinable()) housekeeping_.join();
  metrics_.RemoveCallbacks(this);
  // Order matters: no new requests, then the log commits what it holds (answering through
  // the still-existing server's queues), then the pipeline processes and checkpoints.
  if (server_) server_->Stop();
  if (log_) log_->Stop();
  if (pipeline_) pipeline_->Stop();
  // After the pipeline: its last lists are pushed too.
  for (auto& sink : sinks_) sink->Stop(std::chrono::seconds(5));
  server_.reset();
  api_.reset();
  // Scenario models read the pipeline's item model: gone before the pipeline.
  scenario_.reset();
  scenario_sinks_.reset();
  scenario_models_.reset();
  limiter_.reset();
  keys_.reset();
  rules_.reset();
  catalog_.reset();
  pipeline_.reset();
  kpis_.reset();
  sinks_.clear();
  log_.reset();
  store_.reset();
}

uint16_t App::port() const { return server_ ? server_->port() : 0; }

}  // namespace streamrec::app
