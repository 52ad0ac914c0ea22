// streamrec-sasrec: train / evaluate / bench a SASRec model (or its SLi-Rec-style variant,
// --arch slirec) on a `user item item ...` file or a RecBole .inter file with timestamps, with
// the leave-one-out protocol (last item = test, second-to-last = validation).
// To be folded into `streamrec train` later.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "models/torch/sasrec.h"
#include "models/torch/sequence_data.h"

namespace streamrec::models {
namespace {

struct Split {
  std::vector<std::vector<int32_t>> train;         // all but the test item (val held out later)
  std::vector<std::vector<int32_t>> test_history;  // all but the test item
  std::vector<int32_t> test_target;
  std::vector<std::vector<int32_t>> val_history;  // all but the last two items
  std::vector<int32_t> val_target;
  std::vector<std::vector<int32_t>> train_only;  // all but the last two (popularity counts)
  // Event times parallel to train (= test_history) and val_history; empty without times.
  std::vector<std::vector<int64_t>> train_times, val_times;
};

// Leave-one-out; users with fewer than 3 items have no test case.
Split LeaveOneOut(const UserSequences& data) {
  Split s;
  for (size_t u = 0; u < data.sequences.size(); ++u) {
    const auto& seq = data.sequences[u];
    if (seq.size() < 3) continue;
    if (!data.times.empty()) {
      const auto& t = data.times[u];
      s.train_times.emplace_back(t.begin(), t.end() - 1);
      s.val_times.emplace_back(t.begin(), t.end() - 2);
    }
    s.train.emplace_back(seq.begin(), seq.end() - 1);
    s.test_history.emplace_back(seq.begin(), seq.end() - 1);
    s.test_target.push_back(seq.back());
    s.val_history.emplace_back(seq.begin(), seq.end() - 2);
    s.val_target.push_back(seq[seq.size() - 2]);
    s.train_only.emplace_back(seq.begin(), seq.end() - 2);
  }
  return s;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

std::string OptionsJson(const SasrecOptions& o) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "{\"arch\":\"%s\",\"short_len\":%lld,\"time_buckets\":%lld,"
                "\"max_len\":%lld,\"hidden\":%lld,\"layers\":%lld,\"heads\":%lld,"
                "\"dropout\":%g,\"lr\":%g,\"weight_decay\":%g,\"batch\":%lld,\"epochs\":%lld,"
                "\"patience\":%lld,\"seed\":%llu,\"threads\":%d,\"max_seconds\":%g}",
                SequenceArchName(o.arch), (long long)o.short_len, (long long)o.time_buckets,
                (long long)o.max_len, (long long)o.hidden, (long long)o.layers, (long long)o.heads,
                o.dropout, o.lr, o.weight_decay, (long long)o.batch, (long long)o.epochs,
                (long long)o.patience, (unsigned long long)o.seed, o.threads, o.max_seconds);
  return buf;
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int Fail(const common::Status& status) {
  std::cerr << "error: " << status.ToString() << "\n";
  return status.code == common::Code::kNotFound ? 2 : 1;
}

int RunTrain(const std::string& data_path, const std::string& out_dir, size_t max_users,
             const SasrecOptions& options) {
  auto data = ReadIdSequences(data_path, max_users);
  if (!data.ok()) return Fail(data.status());
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    return Fail(common::Status::Invalid("bad_path",
                                        "cannot create " + out_dir + ": " + ec.message(), "out"));
  }
  const Split split = LeaveOneOut(*data);
  std::cerr << "data " << data_path << ": " << data->sequences.size() << " users, " << data->n_items
            << " items, " << split.test_target.size() << " test users\n";
  auto model = SasrecModel::Train(
      split.train, data->n_items, options,
      [](const SasrecEpoch& e) {
        std::fprintf(stderr, "epoch %3lld loss %.4f val_hr10 %.4f val_ndcg10 %.4f %.1fs\n",
                     (long long)e.epoch, e.loss, e.val.hr10, e.val.ndcg10, e.seconds);
      },
      split.train_times);
  if (!model.ok()) return Fail(model.status());
  const auto& info = model->train_info();
  auto test = model->Evaluate(split.test_history, split.test_target, true, split.train_times);
  if (!test.ok()) return Fail(test.status());
  const LooMetrics pop =
      EvaluatePopularity(split.train, split.test_history, split.test_target, data->n_items);
  if (auto s = model->Save(out_dir + "/model.pt"); !s.ok()) return Fail(s);

  std::ofstream curve(out_dir + "/curve.csv");
  curve << "epoch,loss,val_hr10,val_ndcg10,seconds\n";
  for (const auto& e : info.curve) {
    char buf[128];
    std::snprintf(buf, sizeof(buf), "%lld,%.5f,%.5f,%.5f,%.2f\n", (long long)e.epoch, e.loss,
                  e.val.hr10, e.val.ndcg10, e.seconds);
    curve << buf;
  }
  const double per_epoch = info.epochs_run ? info.seconds / info.epochs_run : 0;
  std::ofstream manifest(out_dir + "/manifest.json");
  manifest << "{\n  \"name\": "
           << JsonString(std::filesystem::path(out_dir).lexically_normal().filename().string())
           << ",\n  \"type\": \"" << SequenceArchName(options.arch)
           << "\",\n  \"version\": " << kSasrecFormatVersion
           << ",\n  \"created\": " << JsonString(UtcNow()) << ",\n  \"items\": " << data->n_items
           << ",\n  \"users\": " << split.test_target.size()
           << ",\n  \"options\": " << OptionsJson(options)
           << ",\n  \"training_data\": " << JsonString(data_path)
           << ",\n  \"training\": {\"epochs_run\": " << info.epochs_run
           << ", \"best_epoch\": " << info.best_epoch << ", \"seconds\": " << info.seconds
           << ", \"seconds_per_epoch\": " << per_epoch
           << "},\n  \"metrics\": {\"validation\": " << info.best_val.ToJson()
           << ", \"test\": " << test->ToJson() << ", \"test_popularity\": " << pop.ToJson()
           << ", \"protocol\": \"leave-one-out, full ranking, history masked\"}\n}\n";
  if (!manifest || !curve) {
    return Fail(common::Status::Internal("cannot write manifest.json / curve.csv in " + out_dir));
  }
  std::cerr << "best epoch " << info.best_epoch << " of " << info.epochs_run << ", " << info.seconds
            << " s; test " << test->ToJson() << "\n";
  std::cout << test->ToJson() << "\n";
  return 0;
}

int RunEvaluate(const std::string& data_path, const std::string& model_dir, size_t max_users) {
  auto model = SasrecModel::Load(model_dir + "/model.pt");
  if (!model.ok()) return Fail(model.status());
  auto data = ReadIdSequences(data_path, max_users);
  if (!data.ok()) return Fail(data.status());
  const Split split = LeaveOneOut(*data);
  auto test = model->Evaluate(split.test_history, split.test_target, true, split.train_times);
  if (!test.ok()) return Fail(test.status());
  auto val = model->Evaluate(split.val_history, split.val_target, true, split.val_times);
  if (!val.ok()) return Fail(val.status());
  const LooMetrics pop =
      EvaluatePopularity(split.train, split.test_history, split.test_target, data->n_items);
  std::cout << "{\"model\": " << JsonString(model_dir) << ", \"data\": " << JsonString(data_path)
            << ", \"test\": " << test->ToJson() << ", \"validation\": " << val->ToJson()
            << ", \"test_popularity\": " << pop.ToJson() << "}\n";
  return 0;
}

int RunBench(const std::string& model_dir, const std::string& data_path, size_t requests, size_t k,
             int threads) {
  auto model = SasrecModel::Load(model_dir + "/model.pt");
  if (!model.ok()) return Fail(model.status());
  SetTorchThreads(threads);
  std::vector<std::vector<int32_t>> histories;
  if (!data_path.empty()) {
    auto data = ReadIdSequences(data_path);
    if (!data.ok()) return Fail(data.status());
    for (auto& seq : data->sequences) {
      if (seq.size() >= 2) histories.emplace_back(seq.begin(), seq.end() - 1);
    }
  } else {  // random histories of 1..max_len items
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> item(1, model->n_items());
    std::uniform_int_distribution<int64_t> len(1, model->options().max_len);
    for (int i = 0; i < 1000; ++i) {
      histories.emplace_back(len(rng));
      for (auto& x : histories.back()) x = item(rng);
    }
  }
  if (histories.empty()) return Fail(common::Status::Invalid("no_data", "no history", "data"));
  std::mt19937 rng(11);
  std::shuffle(histories.begin(), histories.end(), rng);
  for (size_t i = 0; i < 100; ++i) (void)model->TopK(histories[i % histories.size()], k, true);
  std::vector<double> us;
  us.reserve(requests);
  size_t total_len = 0;
  for (size_t i = 0; i < requests; ++i) {
    const auto& h = histories[i % histories.size()];
    total_len += std::min<size_t>(h.size(), model->options().max_len);
    auto t0 = std::chrono::steady_clock::now();
    auto top = model->TopK(h, k, true);
    auto t1 = std::chrono::steady_clock::now();
    if (top.empty()) return Fail(common::Status::Internal("TopK returned nothing"));
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::vector<double> sorted = us;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    return sorted[std::min(sorted.size() - 1, size_t(p * sorted.size()))];
  };
  double mean = 0;
  for (double v : us) mean += v / us.size();
  std::printf(
      "{\"items\": %d, \"requests\": %zu, \"k\": %zu, \"threads\": %d, "
      "\"mean_history\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
      "\"mean_us\": %.1f}\n",
      model->n_items(), requests, k, threads, double(total_len) / requests, pct(0.5), pct(0.9),
      pct(0.99), mean);
  return 0;
}

}  // namespace
}  // namespace streamrec::models

int main(int argc, char** argv) {
  using namespace streamrec::models;
  KeepFreedBlocksForReuse();
  CLI::App app{"streamrec-sasrec: train, evaluate and benchmark a SASRec model"};
  app.require_subcommand(1);
  SasrecOptions options;
  std::string data, out, model_dir;
  size_t max_users = 0, requests = 2000, k = 10;
  int bench_threads = 1;

  auto* train = app.add_subcommand("train", "train on FILE, write MODEL_DIR");
  std::string arch = "sasrec";
  train->add_option("--arch", arch, "sasrec | slirec (long/short-term, time gaps)")
      ->check(CLI::IsMember({"sasrec", "slirec"}));
  train->add_option("--short-len", options.short_len, "slirec: short-term positions (0: all)");
  train->add_option("--time-buckets", options.time_buckets, "slirec: log time-gap buckets");
  train->add_option("--data", data, "user item item ... file (plain or gzip)")->required();
  train->add_option("--out", out, "model directory (created)")->required();
  train->add_option("--max-users", max_users, "first N users only (0: all)");
  train->add_option("--epochs", options.epochs);
  train->add_option("--max-len", options.max_len);
  train->add_option("--hidden", options.hidden);
  train->add_option("--layers", options.layers);
  train->add_option("--heads", options.heads);
  train->add_option("--dropout", options.dropout);
  train->add_option("--lr", options.lr);
  train->add_option("--weight-decay", options.weight_decay);
  train->add_option("--batch", options.batch);
  train->add_option("--patience", options.patience, "0: no validation hold-out");
  train->add_option("--seed", options.seed);
  train->add_option("--threads", options.threads);
  train->add_option("--max-seconds", options.max_seconds, "time budget (0: none)");

  auto* evaluate = app.add_subcommand("evaluate", "test metrics of MODEL_DIR on FILE (JSON)");
  evaluate->add_option("--data", data)->required();
  evaluate->add_option("--model", model_dir)->required();
  evaluate->add_option("--max-users", max_users);

  auto* bench = app.add_subcommand("bench", "single-user TopK latency");
  bench->add_option("--model", model_dir)->required();
  bench->add_option("--data", data, "histories from this file (default: random)");
  bench->add_option("--requests", requests);
  bench->add_option("-k", k);
  bench->add_option("--threads", bench_threads);

  CLI11_PARSE(app, argc, argv);
  options.arch = arch == "slirec" ? SequenceArch::kSlirec : SequenceArch::kSasrec;
  if (train->parsed()) return RunTrain(data, out, max_users, options);
  if (evaluate->parsed()) return RunEvaluate(data, model_dir, max_users);
  return RunBench(model_dir, data, std::max<size_t>(requests, 1), k, bench_threads);
}
