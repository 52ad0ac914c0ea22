// The running engine: store, log, pipeline, HTTP API and housekeeping, wired together
// in dependency order and stopped in reverse.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "app/config.h"
#include "scenario/host.h"
#include "sinks/sink.h"
#include "common/metrics.h"
#include "kpi/kpi_tracker.h"

namespace streamrec::app {

class App {
 public:
  explicit App(Config config);
  ~App();

  //! Opens the data dir, recovers, starts processing and listening.
  common::Status Start();
  //! Stops accepting, drains the log, checkpoints, closes the store.
  void Stop();

  uint16_t port() const;
  common::Registry& metrics() { return metrics_; }
  pipeline::Pipeline& pipeline() { return *pipeline_; }

 private:
  void Housekeeping();

  Config config_;
  common::Registry metrics_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<pipeline::Pipeline> pipeline_;
  std::unique_ptr<kpi::KpiTracker> kpis_;  //!< a pipeline observer; outlives api_
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<rules::RuleBook> rules_;
  std::unique_ptr<auth::KeyStore> keys_;
  auth::UserTokenSecrets token_secrets_;
  std::unique_ptr<auth::RateLimiter> limiter_;
  std::vector<std::unique_ptr<sinks::Sink>> sinks_;
  std::unique_ptr<scenario::ItemModelRegistry> scenario_models_;
  std::unique_ptr<scenario::SinkRegistry> scenario_sinks_;
  std::unique_ptr<scenario::ScenarioHost> scenario_;
  std::unique_ptr<serve::Api> api_;
  std::unique_ptr<serve::HttpServer> server_;
  std::thread housekeeping_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
};

}  // namespace streamrec::app
