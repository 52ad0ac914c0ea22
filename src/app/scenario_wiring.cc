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

//! The runs one scenario version deferred in the pipeline step running on this thread. Kept
//! (free, without a runner) between steps, so that their storage is reused.
struct StepDeferrals {
  std::shared_ptr<const scenario::Runner> runner;  // null: free
  scenario::DeferredRuns runs;

  //! This thread's deferrals for `runner` in the current step, else free ones, bound to it.
  static StepDeferrals& For(const std::shared_ptr<const scenario::Runner>& runner) {
    if (StepDeferrals* held = Holding(runner.get())) return *held;
    StepDeferrals* free = nullptr;
    for (const auto& d : All()) {
      if (!d->runner && !free) free = d.get();
    }
    if (!free) free = All().emplace_back(std::make_unique<StepDeferrals>()).get();
    free->runner = runner;
    return *free;
  }
  //! This thread's deferrals bound to the runner at `address` in the current step (which they
  //! hold), or null.
  static StepDeferrals* Holding(const scenario::Runner* address) {
    for (const auto& d : All()) {
      if (address && d->runner.get() == address) return d.get();
    }
    return nullptr;
  }

  //! This thread's deferrals, bound or free.
  static std::vector<std::unique_ptr<StepDeferrals>>& All() {
    thread_local std::vector<std::unique_ptr<StepDeferrals>> all;  // rarely more than one
    return all;
  }

  //! Held by the step's deferred call (StepWrites::DeferLatest): runs the kept runs when the
  //! step has seen all its events; when the call goes (run, or dropped by a step that failed),
  //! drops what is left and frees the deferrals. The step runs and ends on this thread.
  struct AtStepEnd {
    StepDeferrals* deferrals;
    explicit AtStepEnd(StepDeferrals* d) : deferrals(d) {}
    AtStepEnd(const AtStepEnd&) = delete;
    AtStepEnd& operator=(const AtStepEnd&) = delete;
    ~AtStepEnd() {
      deferrals->runs.Drop();
      deferrals->runner.reset();
    }
    void Run(pipeline::StepWrites& writes) {
      t_step_writes = &writes;
      deferrals->runs.RunAll([](const events::Event& e) { t_event_ms = e.timestamp_ms; });
      t_step_writes = nullptr;
    }
  };
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
    // From the `coalesce` step on, only the step's latest event of each key runs, once the step
    // has seen them all (each version runs its own after a reload within the step). While this
    // thread's step holds the current version for that, the event runs on it without taking a
    // reference of its own (three locked instructions per event).
    std::shared_ptr<const scenario::Runner> current;  // one version for the event and the claim
    StepDeferrals* held = StepDeferrals::Holding(host.CurrentAddress());
    if (!held) {
      current = host.Current();
      if (!current) return;
      held = &StepDeferrals::For(current);
    }
    StepDeferrals& deferrals = *held;
    const scenario::Runner* runner = deferrals.runner.get();  // held until the step's end
    const bool first = deferrals.runs.empty();
    t_step_writes = &writes;
    t_event_ms = event.timestamp_ms;
    runner->Run(event, {.defer = &deferrals.runs});
    t_step_writes = nullptr;
    if (first && !deferrals.runs.empty()) {
      const scenario::Runner* version = runner;
      writes.DeferLatest(std::string(reinterpret_cast<const char*>(&version), sizeof version),
                         [end = std::make_shared<StepDeferrals::AtStepEnd>(&deferrals)](
                             pipeline::StepWrites& step_writes) { end->Run(step_writes); });
    }
    // A version with a store sink owns its users' lists, even for events it drops.
    if (runner->scenario().stores_lists()) writes.ClaimList(event.tenant, event.user_id);
    // Nothing kept: free for another step (last, as it may let the version go).
    if (first && deferrals.runs.empty()) deferrals.runner.reset();
  };
}

}  // namespace streamrec::app
