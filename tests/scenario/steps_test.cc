// Each step type, run through Runner, with traces and per-step counts.
#include <boost/json.hpp>
#include <thread>

#include "common/metrics.h"
#include "expr/json.h"
#include "models/item_model.h"
#include "scenario_test_util.h"

namespace streamrec::scenario::testing {
namespace {

using events::EventType;

class StepsTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Scenario> Load(const std::string& yaml, const RulesHook* rules = nullptr) {
    auto s = Scenario::Load(yaml, &models_, &sinks_.registry, {.rules = rules});
    EXPECT_TRUE(s.ok()) << s.status().message;
    return s.ok() ? *s : nullptr;
  }
  static std::string Output(const StepTrace& trace, std::string_view step) {
    for (const auto& e : trace.entries) {
      if (e.step == step) return expr::ToJson(e.output);
    }
    return "<not run>";
  }
  FakeModels models_;
  TestSinks sinks_;
};

TEST_F(StepsTest, FilterSetRecordSink) {
  auto scenario = Load(R"Y(
name: basic
version: 1
source: {type: events}
steps:
  - {id: views, type: filter, expr: "#input.type == 'view' && #input.tenant == 'shop1'"}
  - {id: vars, type: set, vars: {user: "#input.user_id", slug: "url_match(#input.properties?.url, '/products/{slug}')?.slug ?: #input.item_id", tag: "#slug + '!'"}}
  - {id: rec, type: record, output: r, fields: {u: "#user", s: "#tag", t: "#input.timestamp"}}
  - {id: out, type: sink, sink: {type: memory}, value: "#r"}
)Y");
  Runner runner(scenario);
  auto e = MakeEvent("u1", "i1", 1000, EventType::kView, "shop1",
                     R"({"url":"https://s.example/products/red-hat?x=1"})");
  StepTrace trace = runner.Run(e, {.trace = true});
  EXPECT_EQ(trace.outcome, Outcome::kEnd);
  EXPECT_EQ(trace.sinks, 1u);
  EXPECT_EQ(Output(trace, "views"), "true");
  EXPECT_EQ(Output(trace, "vars"), R"({"user":"u1","slug":"red-hat","tag":"red-hat!"})");
  EXPECT_EQ(Output(trace, "rec"), R"({"u":"u1","s":"red-hat!","t":1000})");
  ASSERT_EQ(sinks_.memory->Records().size(), 1u);
  EXPECT_EQ(sinks_.memory->Records()[0], R"({"u":"u1","s":"red-hat!","t":1000})");

  // No url: falls back to the item id. Another tenant: dropped by the filter.
  trace = runner.Run(MakeEvent("u2", "i9", 2000), {.trace = true});
  EXPECT_EQ(Output(trace, "vars"), R"({"user":"u2","slug":"i9","tag":"i9!"})");
  trace = runner.Run(MakeEvent("u2", "i9", 2000, EventType::kView, "other"));
  EXPECT_EQ(trace.outcome, Outcome::kDropped);
  EXPECT_EQ(trace.last_step, "views");

  auto views = runner.Counts("views");
  EXPECT_EQ(views.in, 3u);
  EXPECT_EQ(views.out, 2u);
  EXPECT_EQ(views.dropped, 1u);
  EXPECT_EQ(runner.Counts("source").in, 3u);
  EXPECT_EQ(runner.Counts("out").out, 2u);
}

TEST_F(StepsTest, CountsOfManyThreadsAndRunnersAddUp) {
  // Each thread counts into its own block per runner; three runners on each thread outgrow the
  // thread's cache of two, and the threads of the second round may reuse the first's ids.
  auto scenario = Load(R"Y(
name: counted
steps:
  - {id: views, type: filter, expr: "#input.item_id != 'skip'"}
  - {id: out, type: sink, sink: {type: memory}}
)Y");
  common::Registry metrics;
  std::vector<std::unique_ptr<Runner>> runners;
  for (int i = 0; i < 3; ++i) runners.push_back(std::make_unique<Runner>(scenario, &metrics));
  constexpr int kThreads = 4, kPerRunner = 300;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerRunner; ++i) {
          for (auto& runner : runners) {
            runner->Run(MakeEvent("u" + std::to_string(t), i % 3 ? "a" : "skip", i));
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  const uint64_t per_runner = 2u * kThreads * kPerRunner, skipped = 2u * kThreads * 100;
  for (auto& runner : runners) {
    EXPECT_EQ(runner->Counts("views").in, per_runner);
    EXPECT_EQ(runner->Counts("views").dropped, skipped);
    EXPECT_EQ(runner->Counts("out").out, per_runner - skipped);
  }
  EXPECT_EQ(metrics.CounterValue("streamrec_scenario_step_events_total",
                                 {{"scenario", "counted"}, {"step", "views"}, {"kind", "in"}}),
            3 * per_runner);
  runners.pop_back();  // a retired runner's counts stay in the counter
  EXPECT_EQ(metrics.CounterValue("streamrec_scenario_step_events_total",
                                 {{"scenario", "counted"}, {"step", "out"}, {"kind", "out"}}),
            3 * (per_runner - skipped));
}

TEST_F(StepsTest, EvaluationErrorCountsAndRunnerGoesOn) {
  auto scenario = Load(R"Y(
name: errors
steps:
  - {id: vars, type: set, vars: {n: "#input.properties.count + 1"}}
  - {id: out, type: sink, sink: {type: fail}}
)Y");
  Runner runner(scenario);
  // No properties: reading a field of null is an evaluation error.
  StepTrace t1 = runner.Run(MakeEvent("u", "i", 1));
  EXPECT_EQ(t1.outcome, Outcome::kError);
  ASSERT_EQ(t1.entries.size(), 1u);
  EXPECT_NE(t1.entries[0].error.find("field 'vars.n'"), std::string::npos) << t1.entries[0].error;
  StepTrace t2 = runner.Run(MakeEvent("u", "i", 2, EventType::kView, "shop1", R"({"count":2})"));
  EXPECT_EQ(t2.outcome, Outcome::kError);
  EXPECT_EQ(t2.last_step, "out");
  EXPECT_EQ(runner.Counts("vars").errors, 1u);
  EXPECT_EQ(runner.Counts("vars").out, 1u);
  EXPECT_EQ(runner.Counts("out").errors, 1u);
}

TEST_F(StepsTest, SplitRoutesToFirstMatchingCase) {
  auto scenario = Load(R"Y(
name: split
steps:
  - id: branch
    type: split
    cases:
      - {when: "#input.type == 'purchase'", to: bought}
      - {when: "#input.type == 'view' || #input.type == 'purchase'", to: viewed}
    default: drop
  - {id: viewed, type: set, vars: {kind: "'view'"}, next: out}
  - {id: bought, type: set, vars: {kind: "'purchase'"}}
  - {id: out, type: sink, sink: {type: memory}, value: "#kind"}
)Y");
  Runner runner(scenario);
  StepTrace t = runner.Run(MakeEvent("u", "i", 1, EventType::kPurchase), {.trace = true});
  EXPECT_EQ(Output(t, "branch"), "\"bought\"");
  EXPECT_EQ(Output(t, "viewed"), "<not run>");
  runner.Run(MakeEvent("u", "i", 2, EventType::kView));
  t = runner.Run(MakeEvent("u", "i", 3, EventType::kAddToCart));
  EXPECT_EQ(t.outcome, Outcome::kDropped);
  EXPECT_EQ(sinks_.memory->Records(), (std::vector<std::string>{"\"purchase\"", "\"view\""}));
  EXPECT_EQ(runner.Counts("branch").dropped, 1u);
  EXPECT_EQ(runner.Counts("branch").out, 2u);
}

TEST_F(StepsTest, RecommendWithWindowInputsAndFallback) {
  auto scenario = Load(R"Y(
name: reco
steps:
  - {id: recent, type: window, kind: sliding, size: 5m, group_by: "#input.user_id",
     aggregate: {items: {list: "#input.item_id"}, times: {list: "#input.timestamp"}}, output: win}
  - {id: reco, type: recommend, model: echo, fallback: pop, n: 4,
     inputs: {items: "#win.items", times: "#win.times"}, output: recs}
  - {id: top, type: set, vars: {ids: "map(#recs, r -> r.item_id)"}}
)Y");
  Runner runner(scenario);
  runner.Run(MakeEvent("u", "a", 1000));
  StepTrace t = runner.Run(MakeEvent("u", "b", 2000), {.trace = true});
  EXPECT_EQ(Output(t, "top"), R"({"ids":["b@2000","a@1000","p1","p2"]})");
}

TEST_F(StepsTest, RecommendOverItemModel) {
  models::ItemModel model({.popular_refresh_ms = 0});
  std::vector<models::WindowItem> window;
  for (int u = 0; u < 3; ++u) {
    window.clear();
    for (const char* item : {"a", "b", "c"}) {
      auto e = MakeEvent("u" + std::to_string(u), item, 1000 + u);
      model.Observe(e, window);
      window.push_back({item, e.timestamp_ms});
    }
  }
  ItemModelRegistry registry(model);
  auto scenario = Scenario::Load(R"Y(
name: item-model
steps:
  - {id: reco, type: recommend, model: covisitation, n: 2, inputs: {items: "[#input.item_id]"}, output: recs}
)Y",
                                 &registry, nullptr);
  ASSERT_TRUE(scenario.ok()) << scenario.status().message;
  Runner runner(*scenario);
  StepTrace t = runner.Run(MakeEvent("x", "a", 5000), {.trace = true});
  ASSERT_EQ(t.outcome, Outcome::kEnd) << (t.entries.empty() ? "" : t.entries.back().error);
  auto recs = expr::ToJson(t.entries.back().output);
  EXPECT_NE(recs.find("\"b\""), std::string::npos) << recs;
  EXPECT_EQ(recs.find("\"a\""), std::string::npos) << "the window's own item is excluded";
}

TEST_F(StepsTest, ModelFailureIsAStepError) {
  auto scenario = Load(R"Y(
name: fail
steps:
  - {id: reco, type: recommend, model: fail, output: recs}
)Y");
  Runner runner(scenario);
  StepTrace t = runner.Run(MakeEvent("u", "a", 1));
  EXPECT_EQ(t.outcome, Outcome::kError);
  EXPECT_EQ(runner.Counts("reco").errors, 1u);
}

class ReverseRules : public RulesHook {
 public:
  common::Result<std::vector<models::ScoredItem>> Apply(
      std::string_view tenant, std::string_view placement,
      const std::vector<models::ScoredItem>& candidates,
      const expr::Value& context) const override {
    std::vector<models::ScoredItem> out(candidates.rbegin(), candidates.rend());
    out.push_back(
        {std::string(tenant) + "/" + std::string(placement) + "/" + expr::ToJson(context), 0});
    return out;
  }
};

TEST_F(StepsTest, RulesStepCallsTheHookOrPassesThrough) {
  const char* yaml = R"Y(
name: rules
steps:
  - {id: cands, type: set, vars: {c: "[{item_id: 'x', score: 2.0}, {item_id: 'y', score: 1.0}]"}}
  - {id: ruled, type: rules, placement: product_page, input: "#c", context: "#input.item_id", output: out}
)Y";
  ReverseRules hook;
  Runner with_hook(Load(yaml, &hook));
  StepTrace t = with_hook.Run(MakeEvent("u", "i7", 1), {.trace = true});
  EXPECT_EQ(Output(t, "ruled"), R"([{"item_id":"y","score":1.0},{"item_id":"x","score":2.0},)"
                                R"({"item_id":"shop1/product_page/\"i7\"","score":0.0}])");
  Runner without(Load(yaml));
  t = without.Run(MakeEvent("u", "i7", 1), {.trace = true});
  EXPECT_EQ(Output(t, "ruled"), R"([{"item_id":"x","score":2.0},{"item_id":"y","score":1.0}])");
}

TEST_F(StepsTest, SourceAsFirstStepAndRawFields) {
  auto scenario = Load(R"Y(
name: raw
steps:
  - {id: in, type: source, source: events}
  - {id: pv, type: filter, expr: "#input.raw?.e == 'pv'"}
  - {id: vars, type: set, vars: {user: "#input.raw.duid ?: #input.user_id"}}
)Y");
  Runner runner(scenario);
  auto raw = *expr::ParseJson(R"({"e":"pv","duid":"d-1"})");
  StepTrace t = runner.Run(MakeEvent("u", "i", 1), {.raw = &raw, .trace = true});
  EXPECT_EQ(Output(t, "vars"), R"({"user":"d-1"})");
  EXPECT_EQ(runner.Run(MakeEvent("u", "i", 1)).outcome, Outcome::kDropped);
  EXPECT_EQ(runner.Counts("in").in, 2u);
}

// Untraced runs read `#input` field by field from the event (EventInput); traced runs build the
// whole record. Both must see the same values, whole or by field.
TEST_F(StepsTest, InputFieldsReadOnDemandMatchTheWholeRecord) {
  auto scenario = Load(R"Y(
name: input
steps:
  - id: out
    type: sink
    sink: {type: memory}
    value: >-
      {all: #input, id: #input.event_id, t: #input.tenant, u: #input.user_id,
       i: #input.item_id ?: 'none', ty: #input.type, ts: #input.timestamp,
       ct: #input.collector_time, s: #input?.session_id ?: 'no session', p: #input.properties?.x,
       r: #input.raw?.e, idx: #input['tenant'], n: size(#input)}
)Y");
  Runner runner(scenario);
  auto e = MakeEvent("u1", "", 1000, EventType::kPurchase, "shop1", R"({"x":5})");
  e.collector_ms = 1040;
  e.raw = R"({"e":"pv"})";
  runner.Run(e, {.trace = true});
  runner.Run(e);
  expr::Value raw = *expr::ParseJson(R"({"e":"tr"})");
  runner.Run(e, {.raw = &raw, .trace = true});
  runner.Run(e, {.raw = &raw});
  auto records = sinks_.memory->Records();
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0], records[1]);
  EXPECT_EQ(records[2], records[3]);
  EXPECT_EQ(records[1],
            R"({"all":{"event_id":")" + e.event_id +
                R"(","tenant":"shop1","user_id":"u1","item_id":null,"type":"purchase",)"
                R"("timestamp":1000,"collector_time":1040,"session_id":null,"properties":{"x":5},)"
                R"("raw":{"e":"pv"}},"id":")" +
                e.event_id +
                R"(","t":"shop1","u":"u1","i":"none","ty":"purchase","ts":1000,"ct":1040,)"
                R"("s":"no session","p":5,"r":"pv","idx":"shop1","n":10})");
  EXPECT_NE(records[3].find(R"("r":"tr")"), std::string::npos) << records[3];
}

// Untraced runs find `#input.raw.x` in the parsed JSON text without making the whole map, and
// answer `#input.raw != null` without making it at all; traced runs and runs given the map make
// it. All must agree: members, absent and nested ones, the first of duplicate keys, and raw text
// that is empty, invalid or not an object reading as null.
TEST_F(StepsTest, RawMembersReadFromTheJsonMatchTheWholeMap) {
  auto scenario = Load(R"Y(
name: members
steps:
  - {id: has, type: filter, expr: "#input.raw != null && null != #input.raw"}
  - id: out
    type: sink
    sink: {type: memory}
    value: >-
      {e: #input.raw.e, missing: #input.raw.nope, nested: #input.raw.cx.a[1], n: #input.raw.n,
       dup: #input.raw.d, is_null: #input.raw == null, whole: size(#input.raw)}
)Y");
  Runner runner(scenario);
  auto e = MakeEvent("u", "i", 1000);
  e.raw = R"({"e":"pv","cx":{"a":[1,2]},"n":3.5,"d":"first","d":"second"})";
  // As the pipeline has it (read back from the log, with room to parse in place), and copied.
  auto decoded = events::DecodeEvent(events::EncodeEvent(e));
  ASSERT_TRUE(decoded.ok());
  const events::Event logged = std::move(decoded).value();
  ASSERT_GE(logged.raw.capacity(), logged.raw.size() + events::kRawReadAhead);
  const expr::Value parsed = *expr::ParseJson(e.raw);
  runner.Run(logged);
  runner.Run(e);
  runner.Run(logged, {.trace = true});
  runner.Run(logged, {.raw = &parsed});
  const std::string expected =
      R"({"e":"pv","missing":null,"nested":2,"n":3.5,"dup":"first","is_null":false,"whole":5})";
  EXPECT_EQ(sinks_.memory->Records(), std::vector<std::string>(4, expected));

  for (const char* text : {"", "not json", "[1]", "\"pv\""}) {
    auto other = MakeEvent("u", "i", 1000);
    other.raw = text;
    EXPECT_EQ(runner.Run(*events::DecodeEvent(events::EncodeEvent(other))).last_step, "has")
        << text;
    EXPECT_EQ(runner.Run(other, {.trace = true}).last_step, "has") << text;
  }
  EXPECT_EQ(sinks_.memory->Records().size(), 4u);
  EXPECT_EQ(runner.Counts("has").dropped, 8u);
}

// Tracker fields as the collector writes them (a minified object of plain strings) are scanned
// without a JSON parser; any other text goes to the parser. Either way the members read must be
// those of the whole map, and invalid text reads as null. A value made for one event and kept
// by a window stays as it was when the next event's field is made in the same place.
TEST_F(StepsTest, RawStringFieldsReadTheSameWhetherScannedOrParsed) {
  auto scenario = Load(R"Y(
name: scanned
steps:
  - {id: has, type: filter, expr: "#input.raw != null"}
  - id: out
    type: sink
    sink: {type: memory}
    value: >-
      {e: #input.raw.e, url: #input.raw.url, n: #input.raw.n, pv: #input.raw.e == 'pv',
       other: #input.raw.e != 'pv', has_url: #input.raw.url != null, no_x: #input.raw.x == null,
       slug: url_match(#input.raw.url, '/products/{slug}')?.slug,
       e_pv: regex_match(#input.raw.e ?: '', '^p[v]$'), e_or_x: (#input.raw.e ?: 'x') == 'x'}
)Y");
  Runner runner(scenario);
  const std::vector<std::string> texts = {
      R"({"e":"pv","url":"https://shop1.example/products/red-hat?variant=1"})",  // scanned
      R"({})",
      R"({"e":"first","e":"second","url":"0123456789abcdef0123"})",
      R"({"url":"01234567","e":"pv"})",  // a string ending on a word boundary
      R"({"e":"p\"v","url":"0123456789ab\\cdef\/x"})",  // escapes: parsed
      R"({"e":"pé","url":"01234567890é"})",              // not ASCII: parsed
      R"({"e":"pv","url":"0123456789abcdef0123456789é"})",
      R"({ "e" : "pv" , "url":"x" })",                   // spaces: parsed
      R"({"e":"pv","url":null,"n":2})",                  // other types: parsed
      R"({"":"","e":"","url":"0123456789abcdef0123456789abcdef0123456789abcdef"})",
      R"({"e":"pv","url":"https://shop1.example/products/a-rather-long-slug-to-cross-blocks"})",
      R"({"e":"pv","url":")" + std::string(1100, 'x') + R"("})",  // long: parsed
      R"({"e":"pv","u1":")" + std::string(60, 'y') + R"(","u2":")" + std::string(61, 'z') +
          R"(","url":"q"})",  // quotes across 64-byte words
  };
  for (const std::string& text : texts) {
    auto e = MakeEvent("u", "i", 1000);
    e.raw = text;
    const expr::Value parsed = *expr::ParseJson(text);
    runner.Run(*events::DecodeEvent(events::EncodeEvent(e)));  // in place, as the log has it
    runner.Run(e);                                             // without read-ahead room
    runner.Run(e, {.raw = &parsed});
    auto records = sinks_.memory->Records();
    ASSERT_GE(records.size(), 3u) << text;
    const std::string& whole_map = records.back();
    EXPECT_EQ(records[records.size() - 3], whole_map) << text;
    EXPECT_EQ(records[records.size() - 2], whole_map) << text;
  }
  const size_t emitted = sinks_.memory->Records().size();
  ASSERT_EQ(emitted, 3 * texts.size());
  // Invalid JSON: no tracker fields, however it goes wrong (a quote or a separator missing or
  // out of place, a stray byte between strings, a control byte).
  for (const char* text :
       {R"({"e":"pv",})", "{\"e\":\"a\x01b\"}", "{\"url\":\"0123456789abcdef0123456789\x1f\"}",
        R"({"e":"pv"}x)", R"({"e")", R"({"e":"pv)", R"("pv")", R"({"e":"pv""url":"x"})",
        R"({"e""pv"})", R"({,"e":"pv"})", R"({"e":"pv"}})", R"({"e":"pv",x"url":"y"})",
        R"({"e":"pv","url":"0123456789abcdef"x})", R"({"e"::"pv"})", R"({"e":"pv","u")", R"({)",
        R"({"e":"pv"))"}) {
    auto e = MakeEvent("u", "i", 1000);
    e.raw = text;
    EXPECT_EQ(runner.Run(*events::DecodeEvent(events::EncodeEvent(e))).last_step, "has") << text;
    EXPECT_EQ(runner.Run(e).last_step, "has") << text;
  }
  EXPECT_EQ(sinks_.memory->Records().size(), emitted);

  auto windowed = Load(R"Y(
name: kept
steps:
  - {id: recent, type: window, kind: sliding, size: 5m, group_by: "#input.user_id",
     aggregate: {urls: {list: "#input.raw.url"}}, output: win}
  - {id: out, type: sink, sink: {type: memory}, value: "#win.urls"}
)Y");
  Runner window_runner(windowed);
  for (const char* url : {"https://shop1.example/products/a", "https://shop1.example/products/b"}) {
    auto e = MakeEvent("u", "i", 1000);
    e.raw = std::string(R"({"url":")") + url + R"("})";
    window_runner.Run(*events::DecodeEvent(events::EncodeEvent(e)));
  }
  EXPECT_EQ(sinks_.memory->Records().back(),
            R"(["https://shop1.example/products/a","https://shop1.example/products/b"])");
}

// With `coalesce`, a run given RunOptions::defer stops at that step and hands back the rest: run
// later, it continues with the variables it had there, and one never run counts as dropped
// there. Runs without `defer` (a trace, `scenario test`) go to the end as before.
TEST_F(StepsTest, CoalesceDefersTheRestWithItsVariables) {
  auto scenario = Load(R"Y(
name: coalesced
coalesce: {from: out, by: "#user"}
steps:
  - {id: vars, type: set, vars: {user: "#input.user_id", item: "#input.item_id"}}
  - {id: out, type: sink, sink: {type: memory}, value: "{u: #user, i: #item}"}
)Y");
  EXPECT_EQ(scenario->coalesce(), std::make_pair(std::string("out"), std::string("#user")));
  Runner runner(scenario);
  EXPECT_NE(runner.GraphJson().find(R"("coalesce":{"from":"out","by":"#user"})"),
            std::string::npos)
      << runner.GraphJson();
  const auto a1 = MakeEvent("a", "i1", 1000), b1 = MakeEvent("b", "i2", 1001),
             a2 = MakeEvent("a", "i3", 1002);
  DeferredRuns deferred;
  EXPECT_EQ(runner.Run(a1, {.defer = &deferred}).outcome, Outcome::kDeferred);
  runner.Run(b1, {.defer = &deferred});
  runner.Run(a2, {.defer = &deferred});
  // a2 replaced a1 where "a" first came.
  ASSERT_EQ(deferred.size(), 2u);
  EXPECT_EQ(deferred.key(0), "a");
  EXPECT_EQ(deferred.event(0).item_id, "i3");
  EXPECT_EQ(deferred.key(1), "b");
  EXPECT_TRUE(sinks_.memory->Records().empty());
  EXPECT_EQ(runner.Counts("out").dropped, 1u);
  std::vector<std::string> before;
  deferred.RunAll([&](const events::Event& e) { before.push_back(e.item_id); });
  EXPECT_EQ(before, (std::vector<std::string>{"i3", "i2"}));
  EXPECT_EQ(sinks_.memory->Records(),
            (std::vector<std::string>{R"({"u":"a","i":"i3"})", R"({"u":"b","i":"i2"})"}));
  EXPECT_TRUE(deferred.empty()) << "runs once";
  const StepCounts out = runner.Counts("out");
  EXPECT_EQ(out.in, 3u);
  EXPECT_EQ(out.out, 2u);
  EXPECT_EQ(out.dropped, 1u);
  EXPECT_EQ(runner.Counts("vars").out, 3u);

  // Kept runs that never run (their step failed) count as dropped; the storage is reused.
  runner.Run(b1, {.defer = &deferred});
  deferred.Drop();
  EXPECT_TRUE(deferred.empty());
  EXPECT_EQ(runner.Counts("out").dropped, 2u);
  runner.Run(a1, {.defer = &deferred});
  deferred.RunAll();
  EXPECT_EQ(sinks_.memory->Records().back(), R"({"u":"a","i":"i1"})");

  // Shops never share a key: the same user id in two shops keeps two runs.
  const auto other_shop = MakeEvent("a", "i5", 1004, EventType::kView, "shop2");
  runner.Run(a1, {.defer = &deferred});
  runner.Run(other_shop, {.defer = &deferred});
  ASSERT_EQ(deferred.size(), 2u);
  EXPECT_EQ(deferred.event(1).tenant, "shop2");
  deferred.RunAll();

  // Another runner's events go to their end while this one's are kept.
  Runner other(scenario);
  runner.Run(a1, {.defer = &deferred});
  EXPECT_EQ(other.Run(b1, {.defer = &deferred}).outcome, Outcome::kEnd);
  EXPECT_EQ(deferred.size(), 1u);
  deferred.RunAll();

  StepTrace traced = runner.Run(a1, {.trace = true});
  EXPECT_EQ(traced.outcome, Outcome::kEnd);
  EXPECT_EQ(Output(traced, "out"), R"({"u":"a","i":"i1"})");
  // A null key coalesces with nothing: the run goes on.
  DeferredRuns none;
  EXPECT_EQ(runner.Run(MakeEvent("", "i4", 1003), {.defer = &none}).outcome, Outcome::kEnd);
  EXPECT_TRUE(none.empty());

  // A key that fails to evaluate (a member of a null `#input.raw`) is the step's error.
  auto failing = Load(R"Y(
name: failing-key
coalesce: {from: out, by: "#input.raw.duid"}
steps:
  - {id: out, type: sink, sink: {type: memory}}
)Y");
  Runner failing_runner(failing);
  StepTrace failed = failing_runner.Run(MakeEvent("", "i", 1000), {.defer = &none});
  EXPECT_EQ(failed.outcome, Outcome::kError);
  EXPECT_EQ(failing_runner.Counts("out").errors, 1u);
}

// A window right before the coalesce step, grouped by its key, updates the replaced run's record
// for the new event: what the latest event of each key sends is what it sends without coalescing,
// over batches with repeat users, items leaving by time and by max_items, and late events.
TEST_F(StepsTest, CoalescedWindowSendsWhatEachKeysLatestEventSendsAlone) {
  const std::string yaml = R"Y(
name: windowed
coalesce: {from: reco, by: "#user"}
steps:
  - {id: vars, type: set, vars: {user: "#input.user_id", item: "#input.item_id"}}
  - id: recent
    type: window
    kind: sliding
    size: 1s
    allowed_lateness: 200ms
    group_by: "#user"
    max_items: 3
    aggregate: {items: {list: "#item"}, times: {list: "#input.timestamp"}}
    output: win
  - id: reco
    type: recommend
    model: echo
    inputs: {user: "#user", items: "#win.items", times: "#win.times"}
    n: 10
    output: recs
  - {id: out, type: sink, sink: {type: memory}, value: "{u: #user, n: #win.size, recs: #recs}"}
)Y";
  Runner coalesced(Load(yaml)), plain(Load(yaml));
  DeferredRuns deferred;
  uint64_t seed = 7;
  auto next = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  int64_t t = 0;
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<events::Event> events;
    for (int i = 0; i < 12; ++i) {
      t += static_cast<int64_t>(next(150));
      const int64_t time = next(6) == 0 ? t - static_cast<int64_t>(next(400)) : t;  // some late
      events.push_back(MakeEvent("u" + std::to_string(next(4)), "i" + std::to_string(next(50)),
                                 time));
    }
    // Without coalescing, each key's latest event that reaches the sink is what must be sent.
    std::map<std::string, std::string> expected;
    for (const auto& e : events) {
      const size_t before = sinks_.memory->Records().size();
      plain.Run(e);
      if (sinks_.memory->Records().size() > before) {
        expected[e.user_id] = sinks_.memory->Records().back();
      }
    }
    const size_t before = sinks_.memory->Records().size();
    for (const auto& e : events) coalesced.Run(e, {.defer = &deferred});
    deferred.RunAll();
    const auto records = sinks_.memory->Records();
    std::map<std::string, std::string> sent;
    for (size_t i = before; i < records.size(); ++i) {
      sent[std::string(boost::json::parse(records[i]).at("u").as_string())] = records[i];
    }
    ASSERT_EQ(sent, expected) << "batch " << batch;
  }
}

// A member of a null `#input.raw` is an error unless read null-safely, however it is read.
TEST_F(StepsTest, RawMemberOfNullIsAnErrorUnlessNullSafe) {
  auto scenario = Load(R"Y(
name: null-raw
steps:
  - {id: safe, type: set, vars: {e: "#input.raw?.e ?: 'none'"}}
  - {id: strict, type: set, vars: {x: "#input.raw.e"}}
)Y");
  Runner runner(scenario);
  auto e = MakeEvent("u", "i", 1000);
  StepTrace traced = runner.Run(e, {.trace = true});
  ASSERT_EQ(traced.entries.size(), 3u);  // source, safe, strict
  EXPECT_EQ(Output(traced, "safe"), R"({"e":"none"})");
  EXPECT_EQ(traced.outcome, Outcome::kError);
  EXPECT_NE(traced.entries[2].error.find("cannot read field 'e' of null"), std::string::npos)
      << traced.entries[2].error;
  EXPECT_EQ(runner.Run(e).outcome, Outcome::kError);
  EXPECT_EQ(runner.Counts("strict").errors, 2u);
}

// A window step refills last event's record in place only when nobody holds it any more: a
// record kept from an earlier event (here by its trace) never changes.
TEST_F(StepsTest, KeptWindowOutputsNeverChange) {
  auto scenario = Load(R"Y(
name: keep
steps:
  - {id: w, type: window, kind: sliding, size: 5m, group_by: "#input.user_id",
     aggregate: {items: {list: "#input.item_id"}}, output: win}
  - {id: out, type: sink, sink: {type: memory}, value: "#win.items"}
)Y");
  Runner runner(scenario);
  StepTrace first = runner.Run(MakeEvent("u", "a", 1000), {.trace = true});
  runner.Run(MakeEvent("u", "b", 2000));
  runner.Run(MakeEvent("u", "c", 3000));
  EXPECT_EQ(Output(first, "w"), R"({"items":["a"],"key":"u","start":-298999,"end":1001,"size":1})");
  EXPECT_EQ(sinks_.memory->Records(),
            (std::vector<std::string>{R"(["a"])", R"(["a","b"])", R"(["a","b","c"])"}));
}

TEST_F(StepsTest, GraphJson) {
  auto scenario = Load(R"Y(
name: graph
version: 7
steps:
  - {id: f, type: filter, expr: "#input.type == 'view'"}
  - {id: w, type: window, kind: session, gap: 30m, group_by: "#input.user_id",
     aggregate: {n: {count: "*"}}, output: win}
  - {id: s, type: split, cases: [{when: "#win.n > 1", to: out}], default: drop}
  - {id: out, type: sink, sink: {type: null}}
)Y");
  common::Registry metrics;
  Runner runner(scenario, &metrics);
  runner.Run(MakeEvent("u", "a", 1000));
  runner.Run(MakeEvent("u", "b", 2000));
  runner.Run(MakeEvent("u", "b", 3000, EventType::kPurchase));
  auto graph = boost::json::parse(runner.GraphJson()).as_object();
  EXPECT_EQ(graph["name"], "graph");
  EXPECT_EQ(graph["version"], 7);
  auto& nodes = graph["nodes"].as_array();
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_EQ(nodes[0].at("id"), "source");
  EXPECT_EQ(nodes[1].at("counts"),
            boost::json::parse(R"({"in":3,"out":2,"errors":0,"dropped":1,"late":0})"));
  EXPECT_EQ(nodes[2].at("type"), "window");
  EXPECT_EQ(nodes[2].at("config").at("gap_ms"), 1800000);
  EXPECT_EQ(nodes[2].at("state").at("groups"), 1);
  EXPECT_EQ(nodes[3].at("counts").at("dropped"), 1);
  EXPECT_EQ(nodes[4].at("counts").at("out"), 1);
  EXPECT_EQ(
      graph["edges"],
      boost::json::parse(R"([{"from":"source","to":"f"},{"from":"f","to":"w"},)"
                         R"({"from":"w","to":"s"},{"from":"s","to":"out","label":"#win.n > 1"}])"));
  EXPECT_EQ(metrics.CounterValue("streamrec_scenario_step_events_total",
                                 {{"scenario", "graph"}, {"step", "f"}, {"kind", "dropped"}}),
            1u);
  EXPECT_EQ(metrics.CounterValue("streamrec_scenario_step_events_total",
                                 {{"scenario", "graph"}, {"step", "out"}, {"kind", "out"}}),
            1u);
}

}  // namespace
}  // namespace streamrec::scenario::testing
