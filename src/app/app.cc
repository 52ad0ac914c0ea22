#include "app/app.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

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
                                  *keys_, token_secrets_, *limiter_});
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
  server_.reset();
  api_.reset();
  limiter_.reset();
  keys_.reset();
  rules_.reset();
  catalog_.reset();
  pipeline_.reset();
  log_.reset();
  store_.reset();
}

uint16_t App::port() const { return server_ ? server_->port() : 0; }

}  // namespace streamrec::app
