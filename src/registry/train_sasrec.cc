#include "registry/train_sasrec.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>

#include "common/clock.h"
#include "common/progress_bar.h"
#include "models/eval.h"

#ifdef STREAMREC_HAVE_TORCH
#include "models/torch/sasrec.h"
#endif

namespace streamrec::registry::internal {

namespace m = streamrec::models;
using common::Code;
using common::Result;
using common::SecondsSince;
using common::Status;

#ifdef STREAMREC_HAVE_TORCH
namespace {
// What either protocol trains on: item ids 1..vocab.size(), oldest first.
struct TrainingSequences {
  std::vector<std::vector<int32_t>> train;
  std::vector<std::vector<int64_t>> train_times;  // parallel to train, or empty
  std::vector<std::string> vocab;                 // item k is vocab[k - 1]
  uint64_t events = 0;
};

// Scores the trained model on the protocol's test cases: a JSON object with the metrics, the
// protocol and its popularity baseline. `train_s` is the training time, for the record.
using TestFn = std::function<Result<std::string>(const m::SasrecModel&, double train_s)>;

m::SasrecOptions OptionsFor(const TrainRequest& req, const Manifest& manifest) {
  m::SasrecOptions options;
  options.arch =
      manifest.type == ModelType::kSlirec ? m::SequenceArch::kSlirec : m::SequenceArch::kSasrec;
  if (req.epochs > 0) options.epochs = req.epochs;
  if (req.threads > 0) options.threads = req.threads;
  if (req.max_len > 0) options.max_len = req.max_len;
  options.max_seconds = req.max_seconds;
  return options;
}

std::string OptionsJson(const m::SasrecOptions& options, bool timed) {
  return "{\"arch\": \"" + std::string(m::SequenceArchName(options.arch)) +
         "\", \"timestamps\": " + (timed ? "true" : "false") +
         ", \"short_len\": " + std::to_string(options.short_len) +
         ", \"time_buckets\": " + std::to_string(options.time_buckets) +
         ", \"threads\": " + std::to_string(options.threads) +
         ", \"max_seconds\": " + Num(options.max_seconds) +
         ", \"max_len\": " + std::to_string(options.max_len) +
         ", \"hidden\": " + std::to_string(options.hidden) +
         ", \"layers\": " + std::to_string(options.layers) +
         ", \"heads\": " + std::to_string(options.heads) +
         ", \"dropout\": " + Num(options.dropout) + ", \"lr\": " + Num(options.lr) +
         ", \"batch\": " + std::to_string(options.batch) +
         ", \"epochs\": " + std::to_string(options.epochs) +
         ", \"patience\": " + std::to_string(options.patience) +
         ", \"mask_validation_history\": " + (options.mask_validation_history ? "true" : "false") +
         ", \"holdout_every\": " + std::to_string(options.holdout_every) +
         ", \"seed\": " + std::to_string(options.seed) + "}";
}

// Trains, tests with `test`, and registers the model with its vocabulary and training curve.
Result<TrainOutcome> TrainTestRegister(Registry& registry, const TrainRequest& req,
                                       const TrainingSequences& data, Manifest manifest,
                                       const m::SasrecOptions& options, const TestFn& test) {
  std::vector<std::array<double, 3>> curve;
  auto progress = [&](const m::SasrecEpoch& e) {
    curve.push_back({static_cast<double>(e.epoch), e.loss, e.val.ndcg10});
    if (req.progress) {
      std::fprintf(stderr, "epoch %3lld/%lld loss %.4f val NDCG@10 %.4f HR@10 %.4f (%.1f s)\n",
                   static_cast<long long>(e.epoch), static_cast<long long>(options.epochs), e.loss,
                   e.val.ndcg10, e.val.hr10, e.seconds);
    }
  };
  // Process-wide, for the rest of this (training) process: the score blocks of training and
  // of the test pass reuse heap memory instead of page-faulting fresh mappings.
  m::KeepFreedBlocksForReuse();
  auto start = std::chrono::steady_clock::now();
  const int32_t n_items = static_cast<int32_t>(data.vocab.size());
  auto steps = [&](int64_t epoch, size_t done, size_t total) {
    common::ProgressBar("epoch " + std::to_string(epoch), req.progress)(done, total);
  };
  auto model =
      m::SasrecModel::Train(data.train, n_items, options, progress, data.train_times, steps);
  if (!model.ok()) return model.status();
  auto json = test(*model, SecondsSince(start));
  if (!json.ok()) return json.status();
  const auto& info = model->train_info();
  json->pop_back();  // '}': append what training did
  *json += ", \"best_epoch\": " + std::to_string(info.best_epoch) +
           ", \"epochs_run\": " + std::to_string(info.epochs_run) +
           ", \"validation\": " + info.best_val.ToJson() + "}";
  manifest.metrics_json = std::move(*json);
  manifest.options_json = OptionsJson(options, !data.train_times.empty());
  manifest.training_data.sequences = data.train.size();
  manifest.training_data.events = data.events;
  manifest.training_data.items = data.vocab.size();
  manifest.vocabulary = "vocab.txt";

  ScratchDir scratch;
  const std::string model_path = scratch.path + "/model.pt";
  if (auto s = model->Save(model_path); !s.ok()) return s;
  std::string vocab_text;
  for (const auto& v : data.vocab) vocab_text += v + "\n";
  std::string csv = "epoch,loss,val_ndcg10\n";
  for (const auto& r : curve) csv += Num(r[0]) + "," + Num(r[1]) + "," + Num(r[2]) + "\n";
  std::vector<Artifact> artifacts{
      {"model.pt", model_path, ""},
      {"vocab.txt", "", vocab_text},
      {"curve.csv", "", csv},
      {"curve.svg", "", CurveSvg(curve, manifest.name + " training curve")}};
  return Finish(registry, std::move(manifest), std::move(artifacts));
}

}  // namespace

Result<TrainOutcome> TrainSasrec(Registry& registry, const TrainRequest& req,
                                 const std::string& path, Manifest manifest) {
  // Item ids in S3-Rec/SASRec files are already 1..n; the vocabulary file maps id k (line k)
  // back to the external id (the same string there; RecBole files bring their own).
  auto read = m::ReadIdSequences(path, req.max_sessions);
  if (!read.ok()) return read.status();
  const auto& users = read->sequences;
  TrainingSequences data;
  data.vocab = read->vocab;
  if (data.vocab.empty()) {
    for (int32_t id = 1; id <= read->n_items; ++id) data.vocab.push_back(std::to_string(id));
  }
  const bool timed = !read->times.empty();
  std::vector<std::vector<int32_t>> histories;
  std::vector<int32_t> targets;
  for (size_t u = 0; u < users.size(); ++u) {
    const auto& seq = users[u];
    data.events += seq.size();
    if (seq.size() < 3) continue;  // as the leave-one-out protocol: too short to test
    histories.emplace_back(seq.begin(), seq.end() - 1);
    targets.push_back(seq.back());
    data.train.push_back(histories.back());  // the test item removed; Train holds out the next
    if (timed) data.train_times.emplace_back(read->times[u].begin(), read->times[u].end() - 1);
  }
  if (req.max_test && histories.size() > req.max_test) {
    histories.resize(req.max_test);
    targets.resize(req.max_test);
  }
  auto test = [&](const m::SasrecModel& model, double train_s) -> Result<std::string> {
    auto start = std::chrono::steady_clock::now();
    // The test histories' times are the training sequences' (max_test only cuts the tail).
    auto metrics = model.Evaluate(histories, targets, true, data.train_times);
    if (!metrics.ok()) return metrics.status();
    const double eval_s = SecondsSince(start);
    const m::LooMetrics pop = m::EvaluatePopularity(data.train, histories, targets,
                                                    static_cast<int32_t>(data.vocab.size()));
    std::string json = metrics->ToJson();
    json.pop_back();
    return json + ", \"protocol\": \"leave-one-out\", \"split\": \"test\", \"popularity\": " +
           pop.ToJson() + ", \"train_seconds\": " + Num(train_s) +
           ", \"eval_seconds\": " + Num(eval_s) + "}";
  };
  const m::SasrecOptions options = OptionsFor(req, manifest);
  return TrainTestRegister(registry, req, data, std::move(manifest), options, test);
}

Result<TrainOutcome> TrainSasrecOnSessions(Registry& registry, const TrainRequest& req,
                                           std::vector<std::vector<std::string>> sessions,
                                           std::span<const m::NextItemCase> cases,
                                           Manifest manifest) {
  TrainingSequences data;
  m::ItemNumbering numbering;
  data.train.reserve(sessions.size());
  for (const auto& session : sessions) {
    data.events += session.size();
    auto& ids = data.train.emplace_back();
    for (const auto& item : session) ids.push_back(numbering.Add(item));
  }
  std::vector<std::vector<int32_t>> prefixes;
  for (const auto& c : cases) {
    auto& ids = prefixes.emplace_back();
    for (const auto& item : c.prefix) ids.push_back(numbering.Find(item));
  }
  data.vocab = std::move(numbering).Take();
  auto test = [&](const m::SasrecModel& model, double train_s) -> Result<std::string> {
    auto start = std::chrono::steady_clock::now();
    // Session protocol (SR-GNN, GCE-GNN): full ranking, items already in the prefix included.
    m::MultiKEvaluator eval({10, 20});
    const auto lists = model.TopKBatch(prefixes, eval.ks().back(), false);
    bool scored = false;
    std::vector<m::ScoredItem> ranked;
    for (size_t i = 0; i < lists.size(); ++i) {
      ranked.clear();
      for (const auto& [id, score] : lists[i]) ranked.push_back({data.vocab[id - 1], score});
      scored |= !ranked.empty();
      eval.Add(ranked, cases[i].target);
    }
    // TopKBatch answers nothing at all for prefixes with known items only when scoring failed
    // (out of memory).
    const bool any_known = std::any_of(prefixes.begin(), prefixes.end(), [](const auto& ids) {
      return std::any_of(ids.begin(), ids.end(), [](int32_t id) { return id > 0; });
    });
    if (!scored && any_known) return Status::Internal("sasrec: scoring the test cases failed");
    std::string json = MetricsJson(eval, "session", "test", train_s, SecondsSince(start));
    auto pop = m::MakePopularityRecommender();
    pop->Fit(sessions);
    json.pop_back();
    return json + ", \"popularity\": " +
           MetricsJson(m::EvaluateSessions(*pop, cases, {10, 20}), "session", "test", 0, 0) + "}";
  };
  m::SasrecOptions options = OptionsFor(req, manifest);
  // Validation as the test (every prefix -> next item, nothing masked) on every 20th session
  // (m::SplitEveryNthSession's split, which a blend's --select reuses); the others train in
  // full, their last clicks included.
  options.mask_validation_history = false;
  options.holdout_every = static_cast<int64_t>(m::kSessionHoldoutEvery);
  return TrainTestRegister(registry, req, data, std::move(manifest), options, test);
}
#else
namespace {
Status NoTorch() {
  return Status::Make(Code::kUnavailable, "no_torch", "this build has no LibTorch: no sasrec",
                      "model");
}
}  // namespace

Result<TrainOutcome> TrainSasrec(Registry&, const TrainRequest&, const std::string&, Manifest) {
  return NoTorch();
}
Result<TrainOutcome> TrainSasrecOnSessions(Registry&, const TrainRequest&,
                                           std::vector<std::vector<std::string>>,
                                           std::span<const m::NextItemCase>, Manifest) {
  return NoTorch();
}
#endif

}  // namespace streamrec::registry::internal
