// Events/s through the pipeline with the built-in path beside the same pipeline with a YAML
// scenario deciding the output, on the same real clicks in the same run: examples/default.yaml
// (its `store` sink writes the served lists) and examples/classic-shopify.yaml (Snowplow fields,
// slug from the URL, 5-minute window, co-visitation, push to a null Shopify sink), and the built-in
// path again on the classic flow's log (builtin_raw: its events carry the tracker fields the
// collector keeps for that scenario), which tells the larger log's cost from the scenario's. Each
// run applies its own copy of the same log from the start. Sessions are interleaved as concurrent
// shoppers' clicks arrive (1,000 at a time), each user's clicks in order; a pipeline step takes up
// to 1,024 events of a partition, so it holds about 3 events of each of its users: the built-in
// path computes one list per user and step, and so do the scenarios (`coalesce`), while every
// event goes through their windows. Prints `name value unit` lines: each path's best
// round, its ratios to the built-in's best, and the median over rounds of each round's ratio to
// the built-in run of the same round (steadier when the machine's speed drifts; the runs' order
// alternates from round to round); rounds on stderr.
#include <rocksdb/db.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/scenario_wiring.h"
#include "bench_clicks.h"
#include "collector/decode.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "scenario/host.h"
#include "store/store.h"

using namespace streamrec;

namespace {

//! A click as the collector logs a tp2 page view of app `shop1`; with `raw` (the collector's
//! mapping for a scenario reading `#input.raw`), with the tracker fields it keeps: the collector's
//! decoder is given the fields the real @snowplow/node-tracker sends for a page view
//! (tests/fixtures/snowplow/node_tracker_post_plain.json), 12 of them, and keeps those the
//! scenario reads.
common::Result<events::Event> ClickEvent(const tools::Click& c,
                                         const collector::MappingOptions* raw) {
  events::Event e = bench::ViewEvent(c, "shop1");
  if (!raw) return e;
  const std::string session_tail = c.session.substr(0, 12);  // the tracker's sid is a UUID
  const std::string session_uuid =
      "5b2c1e44-0000-4000-8000-" + std::string(12 - session_tail.size(), '0') + session_tail;
  const std::string time = std::to_string(c.timestamp_ms);
  const std::string body =
      R"({"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[)"
      R"({"e":"pv","url":"https://shop1.example/products/)" + c.item +
      R"(?variant=1","page":"Product )" + c.item + R"(","eid":")" + e.event_id +
      R"(","p":"web","tv":"node-4.8.0","tna":"sr","aid":"shop1","dtm":")" + time +
      R"(","duid":")" + c.session + R"(","sid":")" + session_uuid + R"(","stm":")" + time +
      R"("}]})";
  auto decoded = collector::DecodeSnowplowPost(body, c.timestamp_ms, *raw);
  if (!decoded.ok()) return decoded.status();
  if (decoded->events.size() != 1) return common::Status::Internal("the click did not decode");
  e.raw = std::move(decoded->events[0].raw);
  return e;
}

//! The clicks reordered as `concurrent` shoppers browsing at once: sessions in the order of their
//! first click, each of the open ones contributing its next click in turn (a user's own order is
//! kept). A session's clicks need not be adjacent: tools::ReadClicks orders all clicks by time,
//! which mixes overlapping sessions.
std::vector<tools::Click> Interleave(const std::vector<tools::Click>& clicks, size_t concurrent) {
  std::vector<std::vector<const tools::Click*>> sessions;
  std::unordered_map<std::string_view, size_t> session_index;
  for (const auto& c : clicks) {
    auto [it, fresh] = session_index.try_emplace(c.session, sessions.size());
    if (fresh) sessions.emplace_back();
    sessions[it->second].push_back(&c);
  }
  std::vector<tools::Click> out;
  out.reserve(clicks.size());
  std::vector<std::pair<size_t, size_t>> open;  // (session, next click)
  size_t next_session = 0;
  while (next_session < sessions.size() || !open.empty()) {
    while (open.size() < concurrent && next_session < sessions.size()) {
      open.emplace_back(next_session++, 0);
    }
    for (size_t i = 0; i < open.size();) {
      auto& [s, k] = open[i];
      out.push_back(*sessions[s][k]);
      if (++k == sessions[s].size()) {
        open[i] = open.back();
        open.pop_back();
      } else {
        ++i;
      }
    }
  }
  return out;
}

//! A store and a log under `dir` holding every click.
common::Status FillLog(const std::string& dir, const std::vector<tools::Click>& clicks,
                       const collector::MappingOptions* raw, common::Registry& metrics,
                       bench::StoreAndLog* out) {
  auto opened = bench::OpenStoreAndLog(dir + "/db", metrics);
  if (!opened.ok()) return opened.status();
  auto& [store, log] = *opened;
  std::vector<events::Event> events;
  events.reserve(clicks.size());
  for (const auto& c : clicks) {
    auto event = ClickEvent(c, raw);
    if (!event.ok()) return event.status();
    events.push_back(std::move(event).value());
  }
  if (auto s = bench::AppendInGroups(*log, std::move(events)); !s.ok()) return s;
  // Compacted before the clock starts, so no run pays for the previous one's background work.
  auto* db = store->db(store::Cf::kLog);
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (auto s = db->Flush(flush, store->cf(store::Cf::kLog)); !s.ok()) {
    return common::Status::Internal(s.ToString());
  }
  if (auto s = db->CompactRange({}, store->cf(store::Cf::kLog), nullptr, nullptr); !s.ok()) {
    return common::Status::Internal(s.ToString());
  }
  *out = std::move(opened).value();
  return common::Status::Ok();
}

//! CPU seconds this process has used (all threads): less sensitive than wall time to a shared
//! machine's noise, and the pipeline's work is what differs between the runs.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

//! The server's sinks, but pushes end in a null sink: no shop to reach (coalescing and HTTP are
//! the sinks' own costs).
scenario::SinkRegistry BenchSinks(common::Registry& metrics) {
  scenario::SinkRegistry sinks = app::ServerSinks(metrics);
  sinks.Register("shopify",
                 [](const boost::json::object&) -> common::Result<std::shared_ptr<scenario::Sink>> {
                   return std::shared_ptr<scenario::Sink>(std::make_shared<scenario::NullSink>());
                 });
  return sinks;
}

std::string ReadExample(const std::string& name) {
  std::ifstream in(std::string(STREAMREC_SOURCE_DIR) + "/examples/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

//! The collector's mapping for scenario `file` when it reads `#input.raw` (null otherwise).
common::Result<std::unique_ptr<collector::MappingOptions>> RawMapping(const std::string& file,
                                                                      common::Registry& metrics) {
  if (file.empty()) return std::unique_ptr<collector::MappingOptions>();
  scenario::SinkRegistry sinks = BenchSinks(metrics);
  auto scenario = scenario::Scenario::Load(ReadExample(file), nullptr, &sinks);
  if (!scenario.ok()) return scenario.status();
  if (!(*scenario)->reads_raw()) return std::unique_ptr<collector::MappingOptions>();
  auto mapping = std::make_unique<collector::MappingOptions>();
  mapping->keep_raw = true;
  mapping->raw_fields = (*scenario)->raw_fields();
  return mapping;
}

//! Seconds for the pipeline to apply the whole log; with `scenario_file`, that scenario runs on
//! every event and replaces the built-in lists (as `serve` does for a scenario with a store sink).
struct Timing {
  double wall_s = 0;
  double cpu_s = 0;
};

common::Result<Timing> CatchUp(bench::StoreAndLog& opened, common::Registry& metrics,
                               const std::string& scenario_file) {
  auto pipeline = pipeline::Pipeline::Open(*opened.store, *opened.log, {}, {}, metrics);
  if (!pipeline.ok()) return pipeline.status();
  scenario::ItemModelRegistry models((*pipeline)->item_model());
  scenario::SinkRegistry sinks = BenchSinks(metrics);
  scenario::ScenarioHost host(&models, &sinks);
  if (!scenario_file.empty()) {
    if (auto s = host.Load(ReadExample(scenario_file)); !s.ok()) return s;
    (*pipeline)->AddObserver(app::ScenarioObserver(host));
    (*pipeline)->SetBuiltinLists([] { return false; });
  }
  const int64_t t0 = common::MonoNs();
  const double cpu0 = ProcessCpuSeconds();
  if (auto s = (*pipeline)->Start(); !s.ok()) return s;
  (*pipeline)->WaitIdle(1'800'000);
  Timing timing{static_cast<double>(common::MonoNs() - t0) / 1e9, ProcessCpuSeconds() - cpu0};
  (*pipeline)->Stop();
  return timing;
}

}  // namespace

int main(int argc, char** argv) {
  const auto clicks = Interleave(
      bench::ClicksFromArgs(argc, argv,
                            "scenario_pipeline_bench DATASET_FILE WORK_DIR [max_events (0: all) "
                            "[runs, e.g. builtin,scenario_classic (one round) [rounds]]]"),
      1000);
  const double n = static_cast<double>(clicks.size());
  std::printf("scenario_bench_events %zu count\n", clicks.size());

  struct Run {
    const char* name;
    const char* scenario_file;
    //! The scenario whose tracker fields the log keeps (the collector's mapping for it), if any.
    const char* raw_for;
  };
  // builtin_raw: the built-in path on the classic flow's log, whose events are larger (the tracker
  // fields kept for it): what the larger log costs apart from the scenario.
  const Run runs[] = {{"builtin", "", ""},
                      {"builtin_raw", "", "classic-shopify.yaml"},
                      {"scenario_default", "default.yaml", ""},
                      {"scenario_classic", "classic-shopify.yaml", "classic-shopify.yaml"}};
  // Optional 4th argument: a comma-separated subset of the runs (e.g. for a profiler).
  const std::string only = argc > 4 ? argv[4] : "";
  const auto selected = [&](size_t r) {
    return only.empty() ||
           ("," + only + ",").find(std::string(",") + runs[r].name + ",") != std::string::npos;
  };
  // Rounds over all three, best time of each: the machine's noise only ever slows a run down.
  // Optional 5th argument: the number of rounds (3 for all runs, 1 for a subset by default).
  const int kRounds = argc > 5 ? std::max(1, std::atoi(argv[5])) : only.empty() ? 3 : 1;
  double best_s[std::size(runs)] = {};
  double best_cpu_s[std::size(runs)] = {};
  // Each round's time over the built-in's in the same round: the shared machine's speed drifts by
  // 20-30% within minutes, so a ratio of two runs a few seconds apart is steadier than one of
  // two bests that may come from different minutes.
  std::vector<double> paired[std::size(runs)];
  for (int round = 0; round < kRounds; ++round) {
    double round_s[std::size(runs)] = {};
    // Odd rounds run in reverse order: whichever run goes first pays for what the previous one
    // left behind (freed memory being returned, a cold cache), so the order alternates.
    for (size_t i = 0; i < std::size(runs); ++i) {
      const size_t r = round % 2 ? std::size(runs) - 1 - i : i;
      const Run& run = runs[r];
      if (!selected(r)) continue;
      common::Registry metrics;
      bench::StoreAndLog opened;
      auto raw = RawMapping(run.raw_for, metrics);
      if (!raw.ok()) {
        std::fprintf(stderr, "%s: %s\n", run.name, raw.status().ToString().c_str());
        return 1;
      }
      auto filled = FillLog(std::string(argv[2]) + "/" + run.name + std::to_string(round), clicks,
                            raw->get(), metrics, &opened);
      auto timing = filled.ok() ? CatchUp(opened, metrics, run.scenario_file)
                                : common::Result<Timing>(filled);
      if (!timing.ok()) {
        std::fprintf(stderr, "%s: %s\n", run.name, timing.status().ToString().c_str());
        return 1;
      }
      // Each round on stderr, to see how far the machine's noise spreads them.
      std::fprintf(stderr, "round %d %s %.0f events/s, %.2f us CPU/event\n", round, run.name,
                   n / timing->wall_s, timing->cpu_s * 1e6 / n);
      round_s[r] = timing->wall_s;
      if (round == 0 || timing->wall_s < best_s[r]) best_s[r] = timing->wall_s;
      if (round == 0 || timing->cpu_s < best_cpu_s[r]) best_cpu_s[r] = timing->cpu_s;
      opened.log->Stop();
    }
    for (size_t r = 1; r < std::size(runs); ++r) {
      if (selected(r) && selected(0)) paired[r].push_back(round_s[r] / round_s[0]);
    }
  }
  for (size_t r = 0; r < std::size(runs); ++r) {
    if (!selected(r)) continue;
    std::printf("pipeline_%s_events_per_s %.0f 1/s\n", runs[r].name, n / best_s[r]);
    std::printf("pipeline_%s_cpu_per_event %.2f us\n", runs[r].name, best_cpu_s[r] * 1e6 / n);
    if (r > 0 && selected(0)) {
      std::printf("pipeline_%s_cost_vs_builtin %.2f ratio\n", runs[r].name, best_s[r] / best_s[0]);
      std::printf("pipeline_%s_cpu_vs_builtin %.2f ratio\n", runs[r].name,
                  best_cpu_s[r] / best_cpu_s[0]);
      std::vector<double>& ratios = paired[r];
      std::sort(ratios.begin(), ratios.end());
      const size_t k = ratios.size();
      std::printf("pipeline_%s_paired_vs_builtin_median %.2f ratio\n", runs[r].name,
                  k % 2 ? ratios[k / 2] : (ratios[k / 2 - 1] + ratios[k / 2]) / 2);
    }
  }
  return 0;
}
