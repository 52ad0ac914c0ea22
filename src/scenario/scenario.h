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
#include <functional>
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

namespace streamrec::expr {
class Env;
}

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
  //! DeferredRuns (counted there when it runs, or as dropped at that step when it does not).
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

class DeferredRuns;

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
  //! rest of it is kept here, for the caller to run once the events handed over with this one are
  //! all in (only the latest of each key). Null, or `raw` given (it would not outlive the call):
  //! every run goes to its end.
  DeferredRuns* defer = nullptr;
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
  friend class DeferredRuns;
  struct StepCounters;
  struct RunScratch;
  //! Runs `event` from step `node` on: the env is set up (`#input` bound), trace started.
  //! `saved` (a deferred run's variables) replaces the env's values first when given.
  StepTrace Run(const events::Event& event, const RunOptions& options, size_t node,
                std::vector<expr::Value>* saved) const;
  StepTrace Run(const events::Event& event, const RunOptions& options, size_t node,
                std::vector<expr::Value>* saved, RunScratch& scratch) const;
  //! A finished or replaced run's window records, for the next window steps of `scratch` to
  //! refill: take(slot) moves a window output variable out (of the env, or a kept run's).
  template <typename Take>
  void KeepSpareRecords(Take&& take, RunScratch& scratch) const;
  std::shared_ptr<const Scenario> scenario_;
  std::unique_ptr<StepCounters> counters_;
  //! The Prometheus counters that read counters_ while this runner lives.
  struct LiveMetric {
    common::Counter* metric;
    size_t node;
    size_t kind;
  };
  std::vector<LiveMetric> live_metrics_;
  std::vector<std::shared_ptr<WindowState>> windows_;  // by node; null for other steps
  //! (node, output slot) of each window step with an output variable.
  std::vector<std::pair<size_t, size_t>> window_outputs_;
  //! The window step right before the `coalesce` step and grouped by its key, if any: an event
  //! that reaches it will replace the run kept for its key (see the window step in Run).
  size_t coalesce_window_ = SIZE_MAX;
};

//! The runs a scenario's `coalesce` step deferred (RunOptions::defer) until the caller has handed
//! over all the events that come together (a pipeline step's): of each key only the latest run
//! is kept, in the place where its key first came; a replaced one counts as dropped at that
//! step. Holds one runner's runs at a time (another runner's events run to their end instead).
//! Kept from batch to batch, its storage is reused: a steady stream allocates about one key per
//! user and batch. One thread at a time.
//! REQUIRES: the runner and the events outlive the runs kept.
class DeferredRuns {
 public:
  DeferredRuns();
  //! Drops what is kept (see Drop).
  ~DeferredRuns();
  DeferredRuns(const DeferredRuns&) = delete;
  DeferredRuns& operator=(const DeferredRuns&) = delete;

  size_t size() const { return used_; }
  bool empty() const { return used_ == 0; }
  //! The i-th run kept: the `coalesce` step's `by` value as text (e.g. the user id), its event.
  const std::string& key(size_t i) const;
  const events::Event& event(size_t i) const;
  //! Runs the rest of each kept run in order, calling `before` (when set) with its event first,
  //! then forgets them all. (A kept run defers nothing, so none adds to this set meanwhile.)
  void RunAll(const std::function<void(const events::Event&)>& before = nullptr);
  //! Forgets the kept runs unrun, each counted as dropped at the `coalesce` step (a step that
  //! failed: its events are run again).
  void Drop();

 private:
  friend class Runner;
  struct Run;
  struct Index;
  //! Whether a run of `runner` may be kept here.
  bool Accepts(const Runner& runner) const { return used_ == 0 || runner_ == &runner; }
  //! Keeps the rest of `event`'s run from step `from`, swapping the env's variables in; true
  //! when it replaced a kept run of the same key (the env then holds that run's variables).
  //! `window_version`: of the output of the runner's window step right before `from`, grouped
  //! by the same key (0 when none). `known`: the run kept for `key`, when the caller found it
  //! already (Kept); null with `looked_up`: the caller found none; else it is looked up here.
  bool Keep(const Runner& runner, size_t from, const events::Event& event,
            const RunOptions& options, std::string_view key, expr::Env& env,
            uint64_t window_version, Run* known, bool looked_up);
  //! Keep's second half: `run` (new, or the kept one it replaces) takes the event's run.
  bool KeepRun(Run& run, const Runner& runner, size_t from, const events::Event& event,
               const RunOptions& options, expr::Env& env, uint64_t window_version, bool replaced);
  //! The run kept for `key` of `tenant`, or nullptr.
  Run* Kept(std::string_view tenant, std::string_view key);

  const Runner* runner_ = nullptr;
  std::vector<Run> runs_;  // [0, used_) kept; the rest only lend their storage to later runs
  size_t used_ = 0;
  std::unique_ptr<Index> index_;  // key -> position in runs_
};

}  // namespace streamrec::scenario
