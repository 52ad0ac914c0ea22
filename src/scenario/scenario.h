// Declarative scenarios (docs/SCENARIOS.md): a YAML graph of named steps from the event source
// to sinks, validated and compiled once at load, then run per event.
//
//   auto scenario = Scenario::Load(yaml, &models, &sinks);   // every error at once
//   Runner runner(*scenario, &metrics);                       // window state + counters
//   StepTrace trace = runner.Run(event);                      // thread-safe
//   runner.GraphJson();                                       // GET /v1/scenario
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/event.h"
#include "expr/value.h"
#include "scenario/plugins.h"
#include "scenario/window.h"

namespace streamrec::scenario {

enum class StepType { kSource, kFilter, kSet, kRecord, kWindow, kRecommend, kRules, kSplit, kSink };
const char* StepTypeName(StepType type);

//! One load error. ToString(): "step 'vars' field 'vars.slug': column 9: unknown function …".
struct ScenarioError {
  std::string step;   //!< empty for file-level errors
  std::string field;  //!< e.g. "vars.slug", "cases[0].to"
  std::string message;
  int line = 0;  //!< 1-based YAML line when known
  std::string ToString() const;
};

//! What happened to an event at one step.
enum class Outcome : uint8_t {
  kPassed,   //!< went on to the next step
  kDropped,  //!< a filter said no, a split routed to drop, or a window group key was null
  kLate,     //!< a window step found the event late
  kError,    //!< an expression, model, rules or sink failure; the event stops here
  kEnd,      //!< the last step passed (or a step routed to `end`)
  //! Reached the scenario's `coalesce` step in a run given RunOptions::defer: the rest waits in a
  //! DeferredRun (counted there when it runs, or as dropped at that step when it does not).
  kDeferred,
};
const char* OutcomeName(Outcome outcome);

struct StepTrace {
  struct Entry {
    std::string_view step;
    StepType type;
    Outcome outcome;
    expr::Value output;  //!< what the step produced (filter: bool, split: target id), traced runs
    std::string error;
  };
  //! Every step the event went through, only when RunOptions::trace.
  std::vector<Entry> entries;
  Outcome outcome = Outcome::kEnd;  //!< of the last step run
  std::string_view last_step;
  uint32_t steps_run = 0;
  uint32_t sinks = 0;  //!< sink emits that succeeded
};

struct StepCounts {
  uint64_t in = 0, out = 0, errors = 0, dropped = 0, late = 0;
};

class DeferredRun;

struct LoadOptions {
  //! Called by `rules` steps; when null they pass candidates through unchanged.
  const RulesHook* rules = nullptr;
};

struct RunOptions {
  //! Raw tracker fields of the event, already parsed (a map), for `#input.raw`; when null,
  //! `event.raw` is parsed if the scenario reads it.
  const expr::Value* raw = nullptr;
  bool trace = false;
  //! False for replays that rebuild state (start-up warm-up): per-step counts stay as they are.
  bool count = true;
  //! When the scenario has a `coalesce` step: the run stops there (Outcome::kDeferred) and the
  //! rest of it is put here, for the caller to run once the events handed over with this one are
  //! all in, only the latest of each DeferredRun::key(). Null, or `raw` given (it would not outlive
  //! the call): every run goes to its end.
  std::unique_ptr<DeferredRun>* defer = nullptr;
};

class Runner;

class Scenario {
 public:
  //! Parses, validates and compiles. On failure the Status (invalid argument, reason
  //! "invalid_scenario") lists every error, one per line. `models` / `sinks` may be null:
  //! model names are then not checked / sink steps are then errors.
  static common::Result<std::shared_ptr<const Scenario>> Load(std::string_view yaml,
                                                              const ModelRegistry* models,
                                                              const SinkRegistry* sinks,
                                                              const LoadOptions& options = {});
  //! Like Load, with the errors as a list (empty when valid).
  static std::vector<ScenarioError> Validate(std::string_view yaml, const ModelRegistry* models,
                                             const SinkRegistry* sinks,
                                             const LoadOptions& options = {});

  ~Scenario();
  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  //! Whether an expression reads `#input.raw` (the collector then keeps tracker fields).
  bool reads_raw() const;
  //! When it reads `#input.raw`: the tracker fields its expressions read (`#input.raw.<field>`),
  //! sorted, which are all the collector needs to keep; nullopt when one may use `#input.raw`
  //! whole (passes it on, indexes it), which needs every field.
  const std::optional<std::vector<std::string>>& raw_fields() const;
  //! Whether it has a `store` sink step (in `serve` its lists replace the built-in ones).
  bool stores_lists() const;
  //! The `coalesce` step's id and its `by` expression's source; empty when it has none.
  std::pair<std::string, std::string> coalesce() const;
  //! How far back (event collector time) a restart must replay events to rebuild the window
  //! steps' in-memory state: the longest window plus its lateness (sessions: TTL, at most 1 h);
  //! 0 without window steps.
  int64_t warmup_ms() const;
  const std::string& source_text() const { return text_; }
  //! Graph nodes: the source (index 0) then the steps in file order.
  size_t node_count() const;
  const std::string& node_id(size_t node) const;
  StepType node_type(size_t node) const;

  // The compiled form; defined and used only in scenario.cc.
  struct Step;
  struct Compiled;

 private:
  friend class Runner;
  Scenario();
  static std::shared_ptr<Scenario> Build(std::string_view yaml, const ModelRegistry* models,
                                         const SinkRegistry* sinks, const LoadOptions& options,
                                         std::vector<ScenarioError>* errors);

  std::string name_;
  int64_t version_ = 0;
  std::string text_;
  std::unique_ptr<Compiled> compiled_;
};

//! A scenario version being run: its window state and per-step counters. Run is thread-safe;
//! an evaluation error counts as that step's error and never stops the runner.
class Runner {
 public:
  //! `metrics` (may be null) gets streamrec_scenario_step_events_total{scenario,step,kind}.
  //! With `carry_from`, window steps whose id and definition are unchanged share that runner's
  //! window state (hot reload keeps users' windows).
  explicit Runner(std::shared_ptr<const Scenario> scenario, common::Registry* metrics = nullptr,
                  const Runner* carry_from = nullptr);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  StepTrace Run(const events::Event& event, const RunOptions& options = {}) const;

  const Scenario& scenario() const { return *scenario_; }
  const std::shared_ptr<const Scenario>& scenario_ptr() const { return scenario_; }
  //! Per node (Scenario::node_id order), since this runner started.
  std::vector<StepCounts> Counts() const;
  StepCounts Counts(std::string_view node_id) const;
  //! {"name","version","nodes":[{"id","type","config":{…},"counts":{…},"state"?}],
  //!  "edges":[{"from","to","label"?}]}.
  std::string GraphJson() const;

 private:
  friend class DeferredRun;
  struct NodeCounters;
  struct RunScratch;
  //! Runs `event` from step `node` on: the env is set up (`#input` bound), trace started.
  //! `saved` (a deferred run's variables) replaces the env's values first when given.
  StepTrace Run(const events::Event& event, const RunOptions& options, size_t node,
                std::vector<expr::Value>* saved) const;
  StepTrace Run(const events::Event& event, const RunOptions& options, size_t node,
                std::vector<expr::Value>* saved, RunScratch& scratch) const;
  //! A deferred run's window records, for the next window steps of `scratch` to refill.
  void KeepSpareRecords(std::vector<expr::Value>& vars, RunScratch& scratch) const;
  std::shared_ptr<const Scenario> scenario_;
  std::unique_ptr<NodeCounters[]> counters_;
  //! The Prometheus counters that read counters_ while this runner lives.
  struct LiveMetric {
    common::Counter* metric;
    const NodeCounters* node;
    size_t kind;
  };
  std::vector<LiveMetric> live_metrics_;
  std::vector<std::shared_ptr<WindowState>> windows_;  // by node; null for other steps
};

//! The rest of an event's run from its scenario's `coalesce` step (RunOptions::defer), with the
//! variables it had there. REQUIRES: the runner and the event outlive it.
class DeferredRun {
 public:
  DeferredRun(const DeferredRun&) = delete;
  DeferredRun& operator=(const DeferredRun&) = delete;
  //! Not run: counted as dropped at the `coalesce` step (a later event of its key replaced it).
  ~DeferredRun();
  //! The `coalesce` step's `by` value as text, e.g. the user id: of the runs deferred together,
  //! only the latest of each key needs to run.
  const std::string& key() const { return key_; }
  const events::Event& event() const { return event_; }
  //! Runs the rest (once; later calls do nothing).
  StepTrace Run();

 private:
  friend class Runner;
  DeferredRun(const Runner& runner, size_t from, const events::Event& event,
              const RunOptions& options, std::string key, std::vector<expr::Value> vars)
      : runner_(runner),
        from_(from),
        event_(event),
        options_(options),
        key_(std::move(key)),
        vars_(std::move(vars)) {}
  const Runner& runner_;
  size_t from_;  // the `coalesce` step
  const events::Event& event_;
  RunOptions options_;  // defer unset
  std::string key_;
  std::vector<expr::Value> vars_;
  bool ran_ = false;
};

}  // namespace streamrec::scenario
