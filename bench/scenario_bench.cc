// Events/s through examples/classic-shopify.yaml (null sink) beside a hand-written C++ version of
// the same steps on the same events and the same ItemModel, in the same run: the ratio is the
// cost of the declarative engine (goal: at most 15% over the hand-written pipeline).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "expr/json.h"
#include "models/item_model.h"
#include "scenario/scenario.h"

namespace {

namespace sc = streamrec::scenario;
using streamrec::events::Event;
using streamrec::expr::Value;

constexpr int kUsers = 2000;
constexpr int kItems = 500;
constexpr int kEvents = 20'000;
constexpr const char* kSchema = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4";

struct Input {
  Event event;
  Value raw;
};

struct Fixture {
  std::vector<Input> inputs;
  streamrec::models::ItemModel model{{.popular_refresh_ms = 1000}};
  std::string yaml;

  Fixture() {
    std::ifstream in(std::string(STREAMREC_SOURCE_DIR) + "/examples/classic-shopify.yaml");
    std::stringstream text;
    text << in.rdbuf();
    yaml = text.str();
    if (yaml.empty()) std::abort();
    uint64_t seed = 42;
    auto rnd = [&seed](uint64_t n) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      return (seed >> 33) % n;
    };
    std::unordered_map<std::string, std::vector<streamrec::models::WindowItem>> windows;
    int64_t t = 1'709'294'400'000;
    for (int i = 0; i < kEvents; ++i) {
      t += 50;
      std::string duid = "d-" + std::to_string(rnd(kUsers));
      // Zipf-ish items: neighbours of a user's last item are likely.
      std::string slug = "product-" + std::to_string(rnd(kItems) * rnd(kItems) / kItems);
      bool pv = rnd(10) < 9;
      Input input;
      input.event = {
          .event_id = "sp-" + std::to_string(i),
          .tenant = "shop1",
          .user_id = duid,
          .item_id = slug,
          .type = pv ? streamrec::events::EventType::kView : streamrec::events::EventType::kOther,
          .timestamp_ms = t,
          .collector_ms = t + 40,
          .session_id = "s-" + duid};
      input.raw = Value(streamrec::expr::Map{
          {"e", Value(pv ? "pv" : "se")},
          {"eid", Value(input.event.event_id)},
          {"aid", Value("shop1")},
          {"duid", Value(duid)},
          {"sid", Value("s-" + duid)},
          {"p", Value("web")},
          {"tv", Value("js-3.17.0")},
          {"dtm", Value(std::to_string(t))},
          {"url", Value("https://shop1.example/products/" + slug + "?variant=1")},
          {"refr", Value("https://shop1.example/")},
          {"schema", Value(kSchema)}});
      auto& window = windows[duid];
      model.Observe(input.event, window);
      window.push_back({slug, t});
      if (window.size() > 20) window.erase(window.begin());
      inputs.push_back(std::move(input));
    }
  }
};

Fixture& Shared() {
  static Fixture fixture;
  return fixture;
}

void BM_Scenario(benchmark::State& state) {
  Fixture& f = Shared();
  sc::ItemModelRegistry models(f.model);
  sc::SinkRegistry sinks = sc::SinkRegistry::WithBuiltins();
  sinks.Register(
      "shopify",
      [](const boost::json::object&) -> streamrec::common::Result<std::shared_ptr<sc::Sink>> {
        return std::shared_ptr<sc::Sink>(std::make_shared<sc::NullSink>());
      });
  auto scenario = sc::Scenario::Load(f.yaml, &models, &sinks);
  if (!scenario.ok()) {
    state.SkipWithError(scenario.status().message.c_str());
    return;
  }
  auto runner = std::make_unique<sc::Runner>(*scenario);
  size_t i = 0, sunk = 0;
  for (auto _ : state) {
    if (i == f.inputs.size()) {
      // Event time would go back: start the windows afresh, as the hand-written side does.
      state.PauseTiming();
      runner = std::make_unique<sc::Runner>(*scenario);
      i = 0;
      state.ResumeTiming();
    }
    const Input& input = f.inputs[i++];
    sc::StepTrace trace = runner->Run(input.event, {.raw = &input.raw});
    sunk += trace.sinks;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["sunk_ratio"] = static_cast<double>(sunk) / state.iterations();
}
BENCHMARK(BM_Scenario);

// The same steps written by hand: schema and field checks, page views of shop1, duid, slug from
// the URL, a bounded 5-minute window per user (LRU-free map, same caps), the model, take 10, a
// record for the null sink.
class HandWritten {
 public:
  explicit HandWritten(const streamrec::models::ItemModel& model) : model_(model) {}

  bool Run(const Event& event, const Value& raw) {
    if (!raw.is_map()) return false;
    const Value* schema = raw.Find("schema");
    const Value* e = raw.Find("e");
    const Value* aid = raw.Find("aid");
    if (!schema || !schema->is_string() ||
        !schema->as_string().starts_with(
            "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-") ||
        !e || !aid) {
      return false;
    }
    if (!e->is_string() || e->as_string() != "pv" || !aid->is_string() ||
        aid->as_string() != "shop1") {
      return false;
    }
    const Value* duid = raw.Find("duid");
    std::string user = duid && duid->is_string() ? std::string(duid->as_string()) : event.user_id;
    const Value* url = raw.Find("url");
    if (!url || !url->is_string()) return false;
    std::string_view u = url->as_string();
    size_t p = u.find("://");
    p = p == std::string_view::npos ? 0 : u.find('/', p + 3);
    if (p == std::string_view::npos) return false;
    std::string_view path = u.substr(p);
    path = path.substr(0, path.find_first_of("?#"));
    if (!path.starts_with("/products/")) return false;
    std::string_view slug = path.substr(10);
    if (slug.empty() || slug.find('/') != std::string_view::npos) return false;

    std::vector<streamrec::models::WindowItem> window;
    {
      std::lock_guard lock(mu_);
      auto& items = windows_[user];
      if (!items.empty() && event.timestamp_ms < items.back().timestamp_ms - 30'000) return false;
      items.push_back({std::string(slug), event.timestamp_ms});
      while (!items.empty() && items.front().timestamp_ms <= event.timestamp_ms - 5 * 60'000) {
        items.pop_front();
      }
      while (items.size() > 20) items.pop_front();
      window.assign(items.begin(), items.end());
    }
    auto recs = model_.Recommend(event.tenant, window, 10);
    if (recs.items.empty()) return false;
    recs.items.resize(std::min<size_t>(recs.items.size(), 10));
    Value record(streamrec::expr::Map{{"user", Value(user)},
                                      {"items", sc::ScoredItemsToValue(recs.items)},
                                      {"model", Value("covisitation")},
                                      {"viewed", Value(slug)}});
    benchmark::DoNotOptimize(record);
    return true;
  }

 private:
  const streamrec::models::ItemModel& model_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<streamrec::models::WindowItem>> windows_;
};

void BM_HandWritten(benchmark::State& state) {
  Fixture& f = Shared();
  auto hand = std::make_unique<HandWritten>(f.model);
  size_t i = 0, sunk = 0;
  for (auto _ : state) {
    if (i == f.inputs.size()) {
      state.PauseTiming();
      hand = std::make_unique<HandWritten>(f.model);
      i = 0;
      state.ResumeTiming();
    }
    const Input& input = f.inputs[i++];
    sunk += hand->Run(input.event, input.raw);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["sunk_ratio"] = static_cast<double>(sunk) / state.iterations();
}
BENCHMARK(BM_HandWritten);

}  // namespace

BENCHMARK_MAIN();
