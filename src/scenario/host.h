// Hot reload of the running scenario: validate a new version, swap it in atomically (an event
// is processed entirely by one version), keep a bounded history for rollback.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "scenario/scenario.h"

namespace streamrec::scenario {

struct HostOptions {
  common::Registry* metrics = nullptr;  //!< per-step counters; may be null
  LoadOptions load;
  size_t max_history = 10;  //!< versions kept for rollback, the running one included
};

struct VersionInfo {
  std::string name;
  int64_t version = 0;
  int64_t loaded_at_ms = 0;  //!< wall clock of the Load / Rollback that made it current
  bool current = false;
};

class ScenarioHost {
 public:
  //! REQUIRES: models, sinks and options.metrics / options.load.rules outlive the host (each
  //! may be null; see Scenario::Load).
  ScenarioHost(const ModelRegistry* models, const SinkRegistry* sinks, HostOptions options = {});

  //! Validates `yaml`; when valid it becomes current (window steps with the same id and
  //! definition keep their state). On error the running version stays and the Status lists
  //! every error, one per line.
  common::Status Load(std::string_view yaml);
  //! Makes the newest kept version numbered `version` current again (window state carried over
  //! as for Load). NotFound when it is not in the history.
  common::Status Rollback(int64_t version);
  //! Newest first.
  std::vector<VersionInfo> History() const;

  //! The current runner (null before the first Load). Hold it for a whole event.
  std::shared_ptr<const Runner> Current() const { return current_.load(std::memory_order_acquire); }
  //! The current runner's address, without taking a reference: for a caller that holds a runner
  //! to see whether it is still the current one (per event, where Current() costs three locked
  //! instructions). Null before the first Load.
  const Runner* CurrentAddress() const { return current_address_.load(std::memory_order_acquire); }
  //! Runs one event through the current version; a no-op trace (steps_run 0) without one.
  StepTrace Run(const events::Event& event, const RunOptions& options = {}) const;
  //! The current runner's graph, or {} without one.
  std::string GraphJson() const;
  //! Runners of the kept versions, newest first (their counters survive a swap).
  std::vector<std::shared_ptr<const Runner>> Runners() const;

 private:
  struct Entry {
    std::shared_ptr<const Runner> runner;
    int64_t loaded_at_ms;
  };
  void Install(std::shared_ptr<const Scenario> scenario);  // REQUIRES: mu_ held

  const ModelRegistry* models_;
  const SinkRegistry* sinks_;
  HostOptions options_;
  mutable std::mutex mu_;      // serializes Load / Rollback and guards history_
  std::deque<Entry> history_;  // newest first
  std::atomic<std::shared_ptr<const Runner>> current_;
  std::atomic<const Runner*> current_address_{nullptr};  // current_'s, set with it
};

}  // namespace streamrec::scenario
