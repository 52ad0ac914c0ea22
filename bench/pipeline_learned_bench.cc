// Scored events/s through the pipeline with a learned model computing every stored list: a
// small SASRec trained on the clicks' sessions, registered, promoted and served by
// registry::ModelHost through Pipeline::SetRecommender, beside co-visitation alone on the same
// events in the same run (the pipeline replays a fresh log at start-up, as pipeline_bench does).
// Prints `name value unit` lines.
#include <time.h>

#include <cstdio>
#include <string>
#include <unordered_map>

#include "bench_clicks.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "log/event_log.h"
#include "models/torch/sasrec.h"
#include "pipeline/pipeline.h"
#include "registry/model_host.h"
#include "store/store.h"

using namespace streamrec;

namespace {

double Seconds(int64_t since_ns) { return static_cast<double>(common::MonoNs() - since_ns) / 1e9; }

// CPU seconds of the whole process: on a shared machine wall time also counts waiting.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Timing {
  double wall = -1, cpu = 0;
};

// A fresh store and log under `dir` holding `clicks`, then a pipeline (with `recommender`
// when not null) replaying it at start-up: wall and CPU seconds until it is idle (wall < 0 on
// error).
Timing Replay(const std::string& dir, const std::vector<tools::Click>& clicks,
              std::shared_ptr<models::Recommender> recommender) {
  common::Registry metrics;
  auto opened = bench::OpenStoreAndLog(dir, metrics);
  if (!opened.ok()) return {};
  auto& [store, log] = *opened;
  std::vector<events::Event> events;
  for (const auto& c : clicks) events.push_back(bench::ViewEvent(c, "bench"));
  if (!bench::AppendInGroups(*log, std::move(events)).ok()) return {};
  const int64_t t0 = common::MonoNs();
  const double cpu0 = CpuSeconds();
  auto pipeline = pipeline::Pipeline::Open(*store, *log, {}, {}, metrics);
  if (!pipeline.ok()) return {};
  if (recommender) (*pipeline)->SetRecommender(std::move(recommender));
  if (!(*pipeline)->Start().ok()) return {};
  (*pipeline)->WaitIdle(600'000);
  const Timing t{Seconds(t0), CpuSeconds() - cpu0};
  (*pipeline)->Stop();
  log->Stop();
  return t;
}

// Trains a small SASRec (one epoch; quality is not the point here) on the clicks' sessions,
// registers it under `dir` and serves its production version with a ModelHost.
std::shared_ptr<models::Recommender> LearnedRecommender(const std::string& dir,
                                                        const std::vector<tools::Click>& clicks) {
  std::unordered_map<std::string, int32_t> ids;
  std::unordered_map<std::string, size_t> session_of;
  std::vector<std::vector<int32_t>> sessions;
  std::string vocab;
  for (const auto& c : clicks) {
    auto [item, added] = ids.try_emplace(c.item, static_cast<int32_t>(ids.size()) + 1);
    if (added) vocab += c.item + "\n";
    auto [s, new_session] = session_of.try_emplace(c.session, sessions.size());
    if (new_session) sessions.emplace_back();
    sessions[s->second].push_back(item->second);
  }
  models::SasrecOptions o;
  o.max_len = 20;
  o.hidden = 64;
  o.layers = 2;
  o.epochs = 1;
  o.patience = 0;
  o.threads = 1;
  auto model = models::SasrecModel::Train(sessions, static_cast<int32_t>(ids.size()), o);
  if (!model.ok()) return nullptr;
  models::SetTorchThreads(1);  // serving: one intra-op thread per call (docs/SASREC.md)
  auto reg = registry::Registry::Open(dir);
  if (!reg.ok() || !model->Save(dir + "/model.pt").ok()) return nullptr;
  registry::Manifest m;
  m.name = "bench-sasrec";
  m.type = registry::ModelType::kSasrec;
  m.vocabulary = "vocab.txt";
  const std::vector<registry::Artifact> files{{"model.pt", dir + "/model.pt", ""},
                                              {"vocab.txt", "", vocab}};
  auto version = reg->Register(m, files);
  if (!version.ok() || !reg->Promote(m.name, *version).ok()) return nullptr;
  auto host = registry::ModelHost::Open(*reg, m.name, {.poll_ms = 0});
  if (!host.ok()) return nullptr;
  std::fprintf(stderr, "learned: sasrec on %zu sessions, %zu items, %.1f s\n", sessions.size(),
               ids.size(), model->train_info().seconds);
  return *host;
}

}  // namespace

int main(int argc, char** argv) {
  auto clicks = bench::ClicksFromArgs(
      argc, argv, "pipeline_learned_bench DATASET_FILE WORK_DIR [events, default 20000]", 20000);
  const std::string work = argv[2];
  auto learned = LearnedRecommender(work + "/models", clicks);
  if (!learned) {
    std::fprintf(stderr, "cannot train or serve the learned model\n");
    return 1;
  }
  const Timing covis = Replay(work + "/db-covis", clicks, nullptr);
  const Timing learned_t = Replay(work + "/db-learned", clicks, learned);
  if (covis.wall < 0 || learned_t.wall < 0) return 1;
  const double n = static_cast<double>(clicks.size());
  std::printf("learned_bench_events %zu count\n", clicks.size());
  std::printf("pipeline_covis_events_per_s %.0f events/s\n", n / covis.wall);
  std::printf("pipeline_learned_events_per_s %.0f events/s\n", n / learned_t.wall);
  std::printf("pipeline_learned_us_per_event %.1f us\n", learned_t.wall / n * 1e6);
  std::printf("pipeline_covis_cpu_us_per_event %.1f us\n", covis.cpu / n * 1e6);
  std::printf("pipeline_learned_cpu_us_per_event %.1f us\n", learned_t.cpu / n * 1e6);
  return 0;
}
