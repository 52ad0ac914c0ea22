// The server's scenario observer: with `coalesce`, each pipeline step gets one deferred call per
// scenario version, which runs each key's latest event when the step has seen them all, or drops
// them (counted) when the step fails and lets the version go.
#include "app/scenario_wiring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>

#include "scenario/scenario_test_util.h"

namespace streamrec::app {
namespace {

using scenario::testing::MakeEvent;

// A pipeline step's writes: keeps the deferred calls for the test to run or drop.
struct StepWritesForTest final : pipeline::StepWrites {
  void Put(std::string_view, std::string_view) override {}
  void Delete(std::string_view) override {}
  void PutList(std::string_view, std::string_view, pipeline::RecList) override {}
  void ClaimList(std::string_view, std::string_view) override {}
  void DeferLatest(std::string key, std::function<void(StepWrites&)> run) override {
    deferred[std::move(key)] = std::move(run);
  }
  void RunDeferred() {
    for (auto& [key, run] : deferred) run(*this);
    deferred.clear();
  }
  std::map<std::string, std::function<void(StepWrites&)>> deferred;
};

constexpr const char* kScenario = R"Y(
name: coalesced
version: 1
coalesce: {from: out, by: "#user"}
steps:
  - {id: vars, type: set, vars: {user: "#input.user_id", item: "#input.item_id"}}
  - {id: out, type: sink, sink: {type: memory}, value: "{u: #user, i: #item}"}
)Y";

TEST(ScenarioObserverTest, OneDeferredCallPerStepRunsTheLatestOrDropsThemAll) {
  scenario::testing::TestSinks sinks;
  scenario::testing::FakeModels models;
  scenario::ScenarioHost host(&models, &sinks.registry);
  ASSERT_TRUE(host.Load(kScenario).ok());
  const pipeline::EventObserver observe = ScenarioObserver(host);
  const pipeline::UserState state;

  const auto a1 = MakeEvent("a", "i1", 1000), b1 = MakeEvent("b", "i2", 1001),
             a2 = MakeEvent("a", "i3", 1002);
  {
    StepWritesForTest step;
    for (const auto* e : {&a1, &b1, &a2}) observe(*e, state, step);
    EXPECT_EQ(step.deferred.size(), 1u) << "one call per step and version, not per event";
    EXPECT_TRUE(sinks.memory->Records().empty());
    step.RunDeferred();
    EXPECT_EQ(sinks.memory->Records(),
              (std::vector<std::string>{R"({"u":"a","i":"i3"})", R"({"u":"b","i":"i2"})"}));
  }
  const auto runner = host.Current();
  EXPECT_EQ(runner->Counts("out").dropped, 1u);

  {
    // A step that fails: its calls go unrun, its kept runs count as dropped.
    StepWritesForTest failed;
    observe(a1, state, failed);
    observe(b1, state, failed);
    ASSERT_EQ(failed.deferred.size(), 1u);
  }
  EXPECT_EQ(runner->Counts("out").dropped, 3u);
  EXPECT_EQ(sinks.memory->Records().size(), 2u);

  {
    // A reload within a step: each version runs its own events.
    StepWritesForTest step;
    observe(a1, state, step);
    std::string v2 = kScenario;
    v2.replace(v2.find("version: 1"), 10, "version: 2");
    ASSERT_TRUE(host.Load(v2).ok());
    observe(b1, state, step);
    observe(a2, state, step);  // on version 2, which this step now holds
    EXPECT_EQ(step.deferred.size(), 2u);
    step.RunDeferred();
    auto records = sinks.memory->Records();
    ASSERT_EQ(records.size(), 5u);
    // The versions' calls run in either order; version 1 ran its own event.
    std::vector<std::string> step_records(records.begin() + 2, records.end());
    std::sort(step_records.begin(), step_records.end());
    EXPECT_EQ(step_records,
              (std::vector<std::string>{R"({"u":"a","i":"i1"})", R"({"u":"a","i":"i3"})",
                                        R"({"u":"b","i":"i2"})"}));
  }
  // Between steps nothing but the host holds a version.
  EXPECT_EQ(runner.use_count(), 2) << "the host's history and this test";
}

}  // namespace
}  // namespace streamrec::app
