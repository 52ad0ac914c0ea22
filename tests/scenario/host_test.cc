// Hot reload: invalid then valid versions under concurrent Run calls, rollback, window carry-over.
#include <atomic>
#include <thread>

#include "scenario_test_util.h"

namespace streamrec::scenario::testing {
namespace {

std::string Version(int v, const std::string& size = "5m") {
  return "name: hot\nversion: " + std::to_string(v) +
         "\nsteps:\n  - {id: w, type: window, size: " + size +
         R"Y(, group_by: "#input.user_id", aggregate: {n: {count: "*"}}, output: win}
  - {id: out, type: sink, sink: {type: null}}
)Y";
}

TEST(HostTest, InvalidLoadKeepsTheRunningVersion) {
  FakeModels models;
  TestSinks sinks;
  ScenarioHost host(&models, &sinks.registry);
  EXPECT_EQ(host.Run(MakeEvent("u", "a", 1)).steps_run, 0u) << "nothing loaded yet";
  ASSERT_TRUE(host.Load(Version(1)).ok());
  auto bad = host.Load(
      "name: hot\nversion: 2\nsteps:\n  - {id: a, type: filter, expr: 'lowr(1)'}\n"
      "  - {id: b, type: nope}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message.find("step 'a' field 'expr'"), std::string::npos) << bad.message;
  EXPECT_NE(bad.message.find("step 'b' field 'type'"), std::string::npos) << bad.message;
  EXPECT_EQ(host.Current()->scenario().version(), 1);
  EXPECT_EQ(host.History().size(), 1u);
}

TEST(HostTest, ConcurrentReloadLosesAndDuplicatesNothing) {
  FakeModels models;
  TestSinks sinks;
  common::Registry metrics;
  ScenarioHost host(&models, &sinks.registry, {.metrics = &metrics, .max_history = 100});
  ASSERT_TRUE(host.Load(Version(1)).ok());
  constexpr int kPerThread = 20'000;
  std::atomic<bool> go{false};
  std::atomic<uint64_t> ended{0};
  auto worker = [&](int t) {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < kPerThread; ++i) {
      // Users of their own per thread, in time order: no event is late.
      auto user = "t" + std::to_string(t) + "-u" + std::to_string(i % 50);
      auto trace = host.Run(MakeEvent(user, "i", i));
      if (trace.outcome == Outcome::kEnd) ended.fetch_add(1);
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  go = true;
  int loaded = 1;
  for (int v = 2; v <= 30; ++v) {
    EXPECT_FALSE(
        host.Load("name: hot\nversion: 99\nsteps: [{id: x, type: filter, expr: '1 +'}]").ok());
    if (host.Load(Version(v, v % 2 ? "5m" : "6m")).ok()) ++loaded;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  a.join();
  b.join();
  EXPECT_EQ(loaded, 30);
  uint64_t source_in = 0, sink_out = 0;
  for (const auto& runner : host.Runners()) {
    source_in += runner->Counts("source").in;
    sink_out += runner->Counts("out").out;
  }
  EXPECT_EQ(source_in, 2u * kPerThread);
  EXPECT_EQ(sink_out, 2u * kPerThread);
  EXPECT_EQ(ended.load(), 2u * kPerThread);
  EXPECT_EQ(metrics.CounterValue("streamrec_scenario_step_events_total",
                                 {{"scenario", "hot"}, {"step", "source"}, {"kind", "in"}}),
            2u * kPerThread);
}

TEST(HostTest, WindowStateCarriesOverWhenTheStepIsUnchanged) {
  FakeModels models;
  TestSinks sinks;
  ScenarioHost host(&models, &sinks.registry);
  ASSERT_TRUE(host.Load(Version(1)).ok());
  host.Run(MakeEvent("u", "a", 1000));
  host.Run(MakeEvent("u", "b", 2000));
  auto count = [&](int64_t t) {
    auto trace = host.Run(MakeEvent("u", "c", t), {.trace = true});
    return trace.entries[1].output.Find("n")->as_int();
  };
  ASSERT_TRUE(host.Load(Version(2)).ok());  // same window definition: kept
  EXPECT_EQ(count(3000), 3);
  ASSERT_TRUE(host.Load(Version(3, "6m")).ok());  // changed: fresh state
  EXPECT_EQ(count(4000), 1);
  // Rollback to 2: its window definition equals the current one? No (5m vs 6m): fresh again.
  ASSERT_TRUE(host.Rollback(2).ok());
  EXPECT_EQ(host.Current()->scenario().version(), 2);
  EXPECT_EQ(count(5000), 1);
  EXPECT_EQ(host.Rollback(42).code, common::Code::kNotFound);
  auto history = host.History();
  ASSERT_EQ(history.size(), 4u);
  EXPECT_EQ(history[0].version, 2);
  EXPECT_TRUE(history[0].current);
  EXPECT_EQ(history[1].version, 3);
  EXPECT_FALSE(history[1].current);
}

}  // namespace
}  // namespace streamrec::scenario::testing

namespace streamrec::scenario::testing {
namespace {

TEST(HostTest, TellsWhetherTheCurrentVersionReadsRawFields) {
  FakeModels models;
  TestSinks sinks;
  std::vector<std::tuple<std::string, std::string>> stored;
  sinks.registry.Register(
      "store", StoreSinkFactory([&](std::string_view, std::string_view user,
                                    std::vector<models::ScoredItem> items, std::string_view) {
        stored.emplace_back(user, items.empty() ? "" : items[0].item_id);
        return common::Status::Ok();
      }));
  ScenarioHost host(&models, &sinks.registry);
  // What the collector asks of the current version (serve's API keeps tracker fields then).
  auto reads_raw = [](const ScenarioHost& h) {
    return h.Current() && h.Current()->scenario().reads_raw();
  };
  EXPECT_FALSE(reads_raw(host));
  ASSERT_TRUE(host.Load(R"Y(
name: raw
version: 1
steps:
  - {id: pv, type: filter, expr: "#input.raw?.e == 'pv'"}
  - {id: vars, type: set, vars: {user: "#input.raw.duid ?: #input.user_id"}}
  - {id: save, type: sink, sink: {type: store}, value: "{user: #user, items: [{item_id: 'x', score: 1.0}]}"}
)Y")
                  .ok());
  EXPECT_TRUE(reads_raw(host));
  // The collector keeps only these of the tracker fields for it.
  EXPECT_EQ(host.Current()->scenario().raw_fields(), std::vector<std::string>({"duid", "e"}));
  EXPECT_TRUE(host.Current()->scenario().stores_lists());
  // The tracker fields travel in the event as the log keeps them: parsed only for `#input.raw`.
  auto event = MakeEvent("u", "i", 1);
  event.raw = R"({"e":"pv","duid":"d-7"})";
  EXPECT_EQ(host.Run(event).outcome, Outcome::kEnd);
  event.raw = R"({"e":"se","duid":"d-7"})";
  EXPECT_EQ(host.Run(event).outcome, Outcome::kDropped);
  event.raw.clear();
  EXPECT_EQ(host.Run(event).outcome, Outcome::kDropped) << "no raw fields: null";
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0], std::make_tuple(std::string("d-7"), std::string("x")));

  ASSERT_TRUE(host.Load(Version(2)).ok());
  EXPECT_FALSE(reads_raw(host));
  EXPECT_FALSE(host.Current()->scenario().stores_lists());
  ASSERT_TRUE(host.Rollback(1).ok());
  EXPECT_TRUE(reads_raw(host));

  // What counts is what the expressions read, not the words in them.
  auto load_filter = [&](int version, const std::string& expr) {
    return host.Load("name: raw\nversion: " + std::to_string(version) +
                     "\nsteps:\n  - {id: f, type: filter, expr: \"" + expr + "\"}\n");
  };
  ASSERT_TRUE(load_filter(3, "#input.type != 'raw' && #input.item_id != 'draw'").ok());
  EXPECT_FALSE(reads_raw(host));
  ASSERT_TRUE(load_filter(4, "size(#input) > 0").ok());
  EXPECT_TRUE(reads_raw(host)) << "#input used whole holds raw";
  EXPECT_EQ(host.Current()->scenario().raw_fields(), std::nullopt) << "every field";
  ASSERT_TRUE(load_filter(5, "#input.raw.e == 'pv' && size(#input.raw) > 1").ok());
  EXPECT_EQ(host.Current()->scenario().raw_fields(), std::nullopt) << "every field";
  ASSERT_TRUE(load_filter(6, "#input.raw != null").ok());
  EXPECT_EQ(host.Current()->scenario().raw_fields(), std::vector<std::string>())
      << "a tracker event or not: no field";
}

}  // namespace
}  // namespace streamrec::scenario::testing
