#include "scenario/host.h"

#include <chrono>

namespace streamrec::scenario {

using common::Status;

ScenarioHost::ScenarioHost(const ModelRegistry* models, const SinkRegistry* sinks,
                           HostOptions options)
    : models_(models), sinks_(sinks), options_(std::move(options)) {
  if (options_.max_history == 0) options_.max_history = 1;
}

void ScenarioHost::Install(std::shared_ptr<const Scenario> scenario) {
  auto previous = current_.load(std::memory_order_acquire);
  auto runner =
      std::make_shared<const Runner>(std::move(scenario), options_.metrics, previous.get());
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  history_.push_front({runner, now});
  while (history_.size() > options_.max_history) history_.pop_back();
  // Events that already hold the previous runner finish on it; the next ones see this one.
  current_address_.store(runner.get(), std::memory_order_release);
  current_.store(std::move(runner), std::memory_order_release);
}

Status ScenarioHost::Load(std::string_view yaml) {
  auto scenario = Scenario::Load(yaml, models_, sinks_, options_.load);
  if (!scenario.ok()) return scenario.status();
  std::lock_guard lock(mu_);
  Install(std::move(scenario).value());
  return {};
}

Status ScenarioHost::Rollback(int64_t version) {
  std::lock_guard lock(mu_);
  for (const auto& entry : history_) {
    if (entry.runner->scenario().version() == version) {
      Install(entry.runner->scenario_ptr());
      return {};
    }
  }
  return Status::Make(common::Code::kNotFound, "unknown_version",
                      "version " + std::to_string(version) + " is not in the history", "version");
}

std::vector<VersionInfo> ScenarioHost::History() const {
  std::lock_guard lock(mu_);
  std::vector<VersionInfo> out;
  auto current = Current();
  for (const auto& entry : history_) {
    out.push_back({entry.runner->scenario().name(), entry.runner->scenario().version(),
                   entry.loaded_at_ms, entry.runner == current});
  }
  return out;
}

std::vector<std::shared_ptr<const Runner>> ScenarioHost::Runners() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const Runner>> out;
  for (const auto& entry : history_) out.push_back(entry.runner);
  return out;
}

StepTrace ScenarioHost::Run(const events::Event& event, const RunOptions& options) const {
  auto runner = Current();
  if (!runner) return StepTrace{};
  return runner->Run(event, options);
}

std::string ScenarioHost::GraphJson() const {
  auto runner = Current();
  return runner ? runner->GraphJson() : "{}";
}

}  // namespace streamrec::scenario
