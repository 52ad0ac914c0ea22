#include "app/scenario_wiring.h"

#include "common/clock.h"
#include "sinks/sink.h"

namespace streamrec::app {

namespace {

// The writes of the pipeline step running the current event on this thread, and that event's
// time (ScenarioObserver).
thread_local pipeline::StepWrites* t_step_writes = nullptr;
thread_local int64_t t_event_ms = 0;
// Set while this thread replays already-handled events to rebuild windows (ScenarioWarmup).
thread_local bool t_warming_up = false;

//! Every sink of a served scenario: silent during the warm-up replay (those events were pushed,
//! stored and logged before the restart).
class QuietDuringWarmup final : public scenario::Sink {
 public:
  explicit QuietDuringWarmup(std::shared_ptr<scenario::Sink> sink) : sink_(std::move(sink)) {}
  common::Status Emit(const scenario::SinkRecord& record) override {
    return t_warming_up ? common::Status::Ok() : sink_->Emit(record);
  }

 private:
  std::shared_ptr<scenario::Sink> sink_;
};

//! A scenario sink step feeding a push sink: the step's value is {user?, items, model?}
//! (the store sink's shape) or just the list of {item_id, score}.
class PushSinkAdapter final : public scenario::Sink {
 public:
  explicit PushSinkAdapter(std::unique_ptr<sinks::Sink> sink) : sink_(std::move(sink)) {}
  ~PushSinkAdapter() override { sink_->Stop(std::chrono::seconds(5)); }

  common::Status Emit(const scenario::SinkRecord& record) override {
    sinks::Update update;
    update.tenant = record.event.tenant;
    update.user_id = record.event.user_id;
    update.model = "scenario:" + std::string(record.scenario);
    update.generated_at_ms = record.event.timestamp_ms;
    const expr::Value* list = &record.value;
    if (record.value.is_map()) {
      if (auto* user = record.value.Find("user"); user && user->is_string()) {
        update.user_id = user->as_string();
      }
      if (auto* model = record.value.Find("model"); model && model->is_string()) {
        update.model = model->as_string();
      }
      list = record.value.Find("items");
      if (!list) {
        return common::Status::Invalid("invalid_value", "a push sink needs items in its value",
                                       "value.items");
      }
    }
    auto items = scenario::ScoredItemsFromValue(*list);
    if (!items.ok()) return items.status();
    update.items = std::move(items).value();
    sink_->Push(update);
    return common::Status::Ok();
  }

 private:
  std::unique_ptr<sinks::Sink> sink_;
};

}  // namespace

scenario::SinkRegistry ServerSinks(common::Registry& metrics) {
  auto registry = std::make_shared<scenario::SinkRegistry>(scenario::SinkRegistry::WithBuiltins());
  for (const char* type : {"webhook", "shopify"}) {
    registry->Register(type,
                       [type, &metrics](const boost::json::object& config)
                           -> common::Result<std::shared_ptr<scenario::Sink>> {
                         boost::json::object with_type = config;
                         with_type["type"] = type;
                         auto sink = sinks::MakeSink(with_type, {.metrics = &metrics});
                         if (!sink.ok()) return sink.status();
                         return std::shared_ptr<scenario::Sink>(
                             std::make_shared<PushSinkAdapter>(std::move(sink).value()));
                       });
  }
  registry->Register(
      "store",
      scenario::StoreSinkFactory([](std::string_view tenant, std::string_view user,
                                    std::vector<models::ScoredItem> items, std::string_view model) {
        if (!t_step_writes) {
          return common::Status::Internal("the store sink runs only inside a pipeline step");
        }
        t_step_writes->PutList(tenant, user,
                               pipeline::RecList{.items = std::move(items),
                                                 .model = std::string(model),
                                                 .generated_at_ms = common::NowMs(),
                                                 .last_event_ms = t_event_ms});
        return common::Status::Ok();
      }));
  scenario::SinkRegistry quiet;
  for (const std::string& type : registry->Types()) {
    quiet.Register(type,
                   [registry, type](const boost::json::object& config)
                       -> common::Result<std::shared_ptr<scenario::Sink>> {
                     auto sink = registry->Create(type, config);
                     if (!sink.ok()) return sink.status();
                     return std::shared_ptr<scenario::Sink>(
                         std::make_shared<QuietDuringWarmup>(std::move(sink).value()));
                   });
  }
  return quiet;
}

pipeline::WarmupObserver ScenarioWarmup(const scenario::ScenarioHost& host) {
  return [&host](const events::Event& event) {
    t_warming_up = true;
    host.Run(event, {.count = false});
    t_warming_up = false;
  };
}

pipeline::EventObserver ScenarioObserver(const scenario::ScenarioHost& host) {
  return [&host](const events::Event& event, const pipeline::UserState&,
                 pipeline::StepWrites& writes) {
    auto runner = host.Current();  // one version for the event and for the claim below
    if (!runner) return;
    t_step_writes = &writes;
    t_event_ms = event.timestamp_ms;
    std::unique_ptr<scenario::DeferredRun> deferred;
    runner->Run(event, {.defer = &deferred});
    t_step_writes = nullptr;
    if (deferred) {
      // From the `coalesce` step on, only the step's latest event of each key runs. The key
      // names the version and the tenant too: after a reload within the step each version runs
      // its own, and shops never share one.
      struct Pending {
        std::shared_ptr<const scenario::Runner> runner;  // outlives `run` (declared first)
        std::unique_ptr<scenario::DeferredRun> run;
      };
      auto pending = std::make_shared<Pending>(Pending{runner, std::move(deferred)});
      const scenario::Runner* version = runner.get();
      std::string key(reinterpret_cast<const char*>(&version), sizeof version);
      key.append(event.tenant).push_back('\0');
      key += pending->run->key();
      writes.DeferLatest(std::move(key), [pending](pipeline::StepWrites& step_writes) {
        t_step_writes = &step_writes;
        t_event_ms = pending->run->event().timestamp_ms;
        pending->run->Run();
        t_step_writes = nullptr;
      });
    }
    // A version with a store sink owns its users' lists, even for events it drops.
    if (runner->scenario().stores_lists()) writes.ClaimList(event.tenant, event.user_id);
  };
}

}  // namespace streamrec::app
