#include "registry/train_sasrec.h"

#include <array>
#include <cstdio>

#ifdef STREAMREC_HAVE_TORCH
#include "models/torch/sasrec.h"
#endif

namespace streamrec::registry::internal {

namespace m = streamrec::models;
using common::Code;
using common::Result;
using common::Status;

#ifdef STREAMREC_HAVE_TORCH
namespace {
double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Result<TrainOutcome> TrainSasrec(Registry& registry, const TrainRequest& req,
                                 const std::string& path, Manifest manifest) {
  // Item ids in S3-Rec/SASRec files are already 1..n; the vocabulary file maps id k (line k)
  // back to the external id (the same string there; RecBole files bring their own).
  auto read = m::ReadIdSequences(path, req.max_sessions);
  if (!read.ok()) return read.status();
  const auto& users = read->sequences;
  std::vector<std::string> vocab = read->vocab;
  if (vocab.empty()) {
    for (int32_t id = 1; id <= read->n_items; ++id) vocab.push_back(std::to_string(id));
  }
  const bool timed = !read->times.empty();
  std::vector<std::vector<int32_t>> train, histories;
  std::vector<std::vector<int64_t>> train_times;  // parallel to train (= histories' times)
  std::vector<int32_t> targets;
  uint64_t events = 0;
  for (size_t u = 0; u < users.size(); ++u) {
    const auto& seq = users[u];
    events += seq.size();
    if (seq.size() < 3) continue;  // as the leave-one-out protocol: too short to test
    histories.emplace_back(seq.begin(), seq.end() - 1);
    targets.push_back(seq.back());
    train.push_back(histories.back());  // the test item removed; Train holds out the next one
    if (timed) train_times.emplace_back(read->times[u].begin(), read->times[u].end() - 1);
  }
  if (req.max_test && histories.size() > req.max_test) {
    histories.resize(req.max_test);
    targets.resize(req.max_test);
  }
  m::SasrecOptions options;
  options.arch =
      manifest.type == ModelType::kSlirec ? m::SequenceArch::kSlirec : m::SequenceArch::kSasrec;
  if (req.epochs > 0) options.epochs = req.epochs;
  if (req.threads > 0) options.threads = req.threads;
  if (req.max_len > 0) options.max_len = req.max_len;
  options.max_seconds = req.max_seconds;
  std::vector<std::array<double, 3>> curve;
  auto progress = [&](const m::SasrecEpoch& e) {
    curve.push_back({static_cast<double>(e.epoch), e.loss, e.val.ndcg10});
    if (req.progress) {
      std::fprintf(stderr, "epoch %3lld/%lld loss %.4f val NDCG@10 %.4f HR@10 %.4f (%.1f s)\n",
                   static_cast<long long>(e.epoch), static_cast<long long>(options.epochs), e.loss,
                   e.val.ndcg10, e.val.hr10, e.seconds);
    }
  };
  auto start = std::chrono::steady_clock::now();
  const int32_t n_items = static_cast<int32_t>(vocab.size());
  auto model = m::SasrecModel::Train(train, n_items, options, progress, train_times);
  if (!model.ok()) return model.status();
  double train_s = SecondsSince(start);
  start = std::chrono::steady_clock::now();
  // The test histories' times are the training sequences' (max_test only cuts the tail).
  auto metrics = model->Evaluate(histories, targets, true, train_times);
  if (!metrics.ok()) return metrics.status();
  double eval_s = SecondsSince(start);
  const auto& info = model->train_info();
  const m::LooMetrics pop = m::EvaluatePopularity(train, histories, targets, n_items);
  std::string json = metrics->ToJson();
  json.pop_back();  // '}': append the protocol, validation, the popularity baseline, timings
  json += ", \"protocol\": \"leave-one-out\", \"split\": \"test\", \"best_epoch\": " +
          std::to_string(info.best_epoch) + ", \"epochs_run\": " + std::to_string(info.epochs_run) +
          ", \"validation\": " + info.best_val.ToJson() + ", \"popularity\": " + pop.ToJson() +
          ", \"train_seconds\": " + Num(train_s) + ", \"eval_seconds\": " + Num(eval_s) + "}";
  manifest.metrics_json = json;
  manifest.options_json =
      "{\"arch\": \"" + std::string(m::SequenceArchName(options.arch)) +
      "\", \"timestamps\": " + (timed ? "true" : "false") +
      ", \"short_len\": " + std::to_string(options.short_len) +
      ", \"time_buckets\": " + std::to_string(options.time_buckets) +
      ", \"threads\": " + std::to_string(options.threads) +
      ", \"max_seconds\": " + Num(options.max_seconds) +
      ", \"max_len\": " + std::to_string(options.max_len) +
      ", \"hidden\": " + std::to_string(options.hidden) +
      ", \"layers\": " + std::to_string(options.layers) +
      ", \"heads\": " + std::to_string(options.heads) + ", \"dropout\": " + Num(options.dropout) +
      ", \"lr\": " + Num(options.lr) + ", \"batch\": " + std::to_string(options.batch) +
      ", \"epochs\": " + std::to_string(options.epochs) +
      ", \"patience\": " + std::to_string(options.patience) +
      ", \"seed\": " + std::to_string(options.seed) + "}";
  manifest.training_data.sequences = train.size();
  manifest.training_data.events = events;
  manifest.training_data.items = vocab.size();
  manifest.vocabulary = "vocab.txt";

  ScratchDir scratch;
  const std::string model_path = scratch.path + "/model.pt";
  if (auto s = model->Save(model_path); !s.ok()) return s;
  std::string vocab_text;
  for (const auto& v : vocab) vocab_text += v + "\n";
  std::string csv = "epoch,loss,val_ndcg10\n";
  for (const auto& r : curve) csv += Num(r[0]) + "," + Num(r[1]) + "," + Num(r[2]) + "\n";
  std::vector<Artifact> artifacts{
      {"model.pt", model_path, ""},
      {"vocab.txt", "", vocab_text},
      {"curve.csv", "", csv},
      {"curve.svg", "", CurveSvg(curve, manifest.name + " training curve")}};
  return Finish(registry, std::move(manifest), std::move(artifacts));
}
#else
Result<TrainOutcome> TrainSasrec(Registry&, const TrainRequest&, const std::string&, Manifest) {
  return Status::Make(Code::kUnavailable, "no_torch", "this build has no LibTorch: no sasrec",
                      "model");
}
#endif

}  // namespace streamrec::registry::internal
