// In-process throughput of the stages behind the HTTP layer, on real clicks: the durable
// log alone (group commits of 1,000 events), then the pipeline alone (per-user windows,
// item models, a recomputed and stored list per event) catching up on that log.
// Prints `name value unit` lines.
#include <cstdio>
#include <string>

#include "bench_clicks.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "log/event_log.h"
#include "pipeline/pipeline.h"
#include "store/store.h"

using namespace streamrec;

int main(int argc, char** argv) {
  const auto clicks =
      bench::ClicksFromArgs(argc, argv, "pipeline_bench DATASET_FILE WORK_DIR [max_events]");
  common::Registry metrics;
  auto opened = bench::OpenStoreAndLog(std::string(argv[2]) + "/db", metrics);
  if (!opened.ok()) return 1;
  auto& [store, log] = *opened;

  // 1. The log alone: no pipeline is listening yet.
  std::vector<events::Event> events;
  events.reserve(clicks.size());
  for (const auto& c : clicks) events.push_back(bench::ViewEvent(c, "bench"));
  const int64_t t0 = common::MonoNs();
  if (!bench::AppendInGroups(*log, std::move(events)).ok()) return 1;
  const double log_s = static_cast<double>(common::MonoNs() - t0) / 1e9;

  // 2. The pipeline alone, replaying the whole log at start-up.
  const int64_t t1 = common::MonoNs();
  auto pipeline = pipeline::Pipeline::Open(*store, *log, {}, {}, metrics);
  if (!pipeline.ok() || !(*pipeline)->Start().ok()) return 1;
  (*pipeline)->WaitIdle(600'000);
  const double pipe_s = static_cast<double>(common::MonoNs() - t1) / 1e9;

  const double n = static_cast<double>(clicks.size());
  std::printf("bench_events %zu count\n", clicks.size());
  std::printf("log_append_events_per_s %.0f 1/s\n", n / log_s);
  std::printf("pipeline_events_per_s %.0f 1/s\n", n / pipe_s);
  std::printf("pipeline_us_per_event %.2f us\n", pipe_s / n * 1e6);
  (*pipeline)->Stop();
  log->Stop();
  return 0;
}
