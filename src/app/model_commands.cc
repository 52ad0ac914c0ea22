#include "app/model_commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json_text.h"
#include "common/progress_bar.h"
#include "models/benchmark_datasets.h"
#include "models/eval.h"
#include "registry/registry.h"
#include "registry/train.h"

namespace streamrec::app {
namespace {

namespace m = streamrec::models;

struct EvaluateArgs {
  std::string model = "all";
  std::string dataset = "diginetica";
  std::string data_dir;
  std::string out;
  std::string split = "test";
  size_t max_test = 0;
  // Session-kNN settings; the defaults are the literature's, not tuned per dataset.
  m::SessionKnnOptions knn;  // sknn/vsknn settings (the kind comes from the model's name)
  bool quiet = false;
  bool select = false;
};

EvaluateArgs g_args;
CLI::App* g_evaluate_cmd = nullptr;

// `streamrec train` and `streamrec models ...` (the model registry).
struct RegistryArgs {
  std::string registry = "data/models";  // <data_dir>/models with the default data_dir
  std::string name;
  int64_t version = 0;
  std::string torchscript, vocab, signature;
  registry::TrainRequest train;
  bool quiet = false;
};
RegistryArgs g_reg;
CLI::App* g_train_cmd = nullptr;
CLI::App* g_models_cmd = nullptr;
CLI::App* g_list_cmd = nullptr;
CLI::App* g_show_cmd = nullptr;
CLI::App* g_promote_cmd = nullptr;
CLI::App* g_rollback_cmd = nullptr;
CLI::App* g_import_cmd = nullptr;

using models::BenchmarkDataset;
using models::Protocol;

using common::ProgressBar;

struct Result {
  std::string model, settings, dataset, protocol, split;
  double train_seconds = 0, eval_seconds = 0;
  m::MultiKEvaluator metrics;
  size_t train_sessions = 0;
};

std::string ToJson(const std::vector<Result>& results) {
  std::ostringstream out;
  out.precision(6);
  out << "[\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    out << "  {\"model\": " << common::JsonQuoted(r.model)
        << ", \"settings\": " << common::JsonQuoted(r.settings)
        << ", \"dataset\": " << common::JsonQuoted(r.dataset)
        << ", \"protocol\": " << common::JsonQuoted(r.protocol)
        << ", \"split\": " << common::JsonQuoted(r.split)
        << ", \"train_sessions\": " << r.train_sessions << ", \"cases\": " << r.metrics.cases()
        << ", \"train_seconds\": " << r.train_seconds << ", \"eval_seconds\": " << r.eval_seconds
        << ", \"metrics\": {";
    bool first = true;
    for (size_t k : r.metrics.ks()) {
      out << (first ? "" : ", ") << "\"HR@" << k << "\": " << r.metrics.HitRate(k) << ", \"MRR@"
          << k << "\": " << r.metrics.Mrr(k) << ", \"NDCG@" << k << "\": " << r.metrics.Ndcg(k);
      first = false;
    }
    out << "}}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  out << "]\n";
  return out.str();
}

void PrintTable(const std::vector<Result>& results) {
  if (results.empty()) return;
  std::printf("%-7s %-13s %-14s %7s", "model", "dataset", "protocol", "cases");
  for (size_t k : results.front().metrics.ks()) {
    std::printf(" %8s %8s %8s", ("HR@" + std::to_string(k)).c_str(),
                ("MRR@" + std::to_string(k)).c_str(), ("NDCG@" + std::to_string(k)).c_str());
  }
  std::printf(" %8s %8s\n", "train_s", "eval_s");
  for (const auto& r : results) {
    std::printf("%-7s %-13s %-14s %7llu", r.model.c_str(), r.dataset.c_str(), r.protocol.c_str(),
                static_cast<unsigned long long>(r.metrics.cases()));
    for (size_t k : r.metrics.ks()) {
      std::printf(" %8.4f %8.4f %8.4f", r.metrics.HitRate(k), r.metrics.Mrr(k), r.metrics.Ndcg(k));
    }
    std::printf(" %8.2f %8.2f\n", r.train_seconds, r.eval_seconds);
  }
  std::fflush(stdout);
}

// The session-kNN settings that `train` and `evaluate` both take.
void AddKnnOptions(CLI::App* cmd, m::SessionKnnOptions& knn) {
  cmd->add_option("--knn-k", knn.k, "sknn/vsknn: neighbours")->capture_default_str();
  cmd->add_option("--sample-size", knn.sample_size, "sknn/vsknn: recent sessions considered")
      ->capture_default_str();
  cmd->add_option("--idf-weighting", knn.idf_weighting, "vsknn: IDF weight of votes, 0 off")
      ->capture_default_str();
  cmd->add_option("--position-decay", knn.position_decay,
                  "vsknn: votes decay as exp(-d/x) with the item's distance d from the shared item "
                  "in the neighbour session, 0 off")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

m::SessionKnnOptions KnnOptions(const std::string& name) {
  m::SessionKnnOptions options = g_args.knn;
  options.kind =
      name == "sknn" ? m::SessionKnnOptions::Kind::kSknn : m::SessionKnnOptions::Kind::kVsknn;
  return options;
}

std::unique_ptr<m::SessionRecommender> MakeModel(const std::string& name) {
  if (name == "sknn" || name == "vsknn") return m::MakeSessionKnnRecommender(KnnOptions(name));
  return m::MakeRecommender(name);
}

using common::SecondsSince;

int RunEvaluate() {
  const BenchmarkDataset* dataset = models::FindBenchmarkDataset(g_args.dataset);
  if (!dataset) {
    std::cerr << "error: unknown --dataset " << g_args.dataset << "\n";
    return 2;
  }
  std::string dir = g_args.data_dir.empty() ? models::DefaultDatasetsDir() : g_args.data_dir;
  std::string train_path = (std::filesystem::path(dir) / dataset->train).string();
  const bool validation = g_args.split == "validation";

  std::vector<std::vector<std::string>> train;
  std::vector<m::NextItemCase> cases;
  std::vector<m::UserSequence> users;
  if (dataset->protocol == Protocol::kSession) {
    auto sessions = m::ReadSessions(train_path);
    if (!sessions.ok()) {
      std::cerr << "error: " << sessions.status().message << "\n";
      return 1;
    }
    train = std::move(sessions).value();
    if (validation) {
      cases = m::SplitNewestSessions(train);
    } else {
      auto read = m::ReadNextItemCases((std::filesystem::path(dir) / dataset->test).string());
      if (!read.ok()) {
        std::cerr << "error: " << read.status().message << "\n";
        return 1;
      }
      cases = std::move(read).value();
    }
    if (g_args.max_test && cases.size() > g_args.max_test) cases.resize(g_args.max_test);
  } else {
    auto read = m::ReadUserSequences(train_path);
    if (!read.ok()) {
      std::cerr << "error: " << read.status().message << "\n";
      return 1;
    }
    users = std::move(read).value();
    train = m::LeaveOneOutTraining(users);
    if (g_args.max_test && users.size() > g_args.max_test) users.resize(g_args.max_test);
  }

  std::vector<std::string> names;
  if (g_args.model == "all") {
    names = {"pop", "covis", "sknn", "vsknn"};
  } else {
    names = {g_args.model};
  }
  if (g_args.select && !validation &&
      std::find(names.begin(), names.end(), "vsknn") != names.end()) {
    const auto chosen = m::SelectVsknnOptions(
        KnnOptions("vsknn"), train, users,
        [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    g_args.knn.idf_weighting = chosen.idf_weighting;
    g_args.knn.position_decay = chosen.position_decay;
  }
  std::vector<Result> results;
  for (const auto& name : names) {
    auto model = MakeModel(name);
    if (!model) {
      std::cerr << "error: unknown --model " << name << "\n";
      return 2;
    }
    Result r;
    r.model = name;
    r.settings = model->Describe();
    r.dataset = dataset->name;
    r.split = g_args.split;
    r.train_sessions = train.size();
    auto start = std::chrono::steady_clock::now();
    model->Fit(train);
    r.train_seconds = SecondsSince(start);
    ProgressBar bar(name + " " + dataset->name, !g_args.quiet);
    start = std::chrono::steady_clock::now();
    if (dataset->protocol == Protocol::kSession) {
      r.protocol = "session";
      r.metrics = m::EvaluateSessions(*model, cases, {10, 20}, std::ref(bar));
    } else {
      r.protocol = "leave-one-out";
      r.metrics = m::EvaluateLeaveOneOut(*model, users, validation, {5, 10, 20}, std::ref(bar));
    }
    r.eval_seconds = SecondsSince(start);
    results.push_back(std::move(r));
  }
  PrintTable(results);
  if (!g_args.out.empty()) {
    std::ofstream out(g_args.out);
    out << ToJson(results);
    if (!out.flush()) {
      std::cerr << "error: cannot write " << g_args.out << "\n";
      return 1;
    }
  }
  return 0;
}

int Fail(const common::Status& s) {
  std::cerr << "error: " << s.message << "\n";
  return s.code == common::Code::kInvalidArgument ? 2 : 1;
}

// Metrics in one line for `models list`: the headline figures of either protocol.
std::string Headline(const std::string& metrics_json) {
  std::string out;
  for (const char* key : {"\"HR@20\"", "\"MRR@20\"", "\"hr@10\"", "\"ndcg@10\"", "\"NDCG@10\""}) {
    auto at = metrics_json.find(key);
    if (at == std::string::npos) continue;
    auto colon = metrics_json.find(':', at);
    auto end = metrics_json.find_first_of(",}", colon);
    std::string value = metrics_json.substr(colon + 1, end - colon - 1);
    value.erase(0, value.find_first_not_of(' '));
    if (value.size() > 6) value.resize(6);
    out += (out.empty() ? "" : " ") + std::string(key + 1, std::strlen(key) - 2) + "=" + value;
  }
  return out;
}

int RunRegistryCommand() {
  auto reg = registry::Registry::Open(g_reg.registry);
  if (!reg.ok()) return Fail(reg.status());
  if (*g_train_cmd) {
    g_reg.train.progress = !g_reg.quiet;
    auto out = registry::TrainAndRegister(*reg, g_reg.train);
    if (!out.ok()) return Fail(out.status());
    std::printf("registered %s v%lld (candidate) in %s\nmetrics: %s\n", out->manifest.name.c_str(),
                static_cast<long long>(out->version),
                reg->VersionDir(out->manifest.name, out->version).c_str(),
                out->manifest.metrics_json.c_str());
    return 0;
  }
  if (*g_list_cmd) {
    auto list = reg->List(g_reg.name);
    if (!list.ok()) return Fail(list.status());
    std::printf("%-28s %7s %-11s %-10s %-11s %s\n", "name", "version", "type", "stage", "created",
                "metrics");
    for (const auto& m : *list) {
      std::time_t t = m.created_ms / 1000;
      char when[32];
      std::strftime(when, sizeof(when), "%Y-%m-%d", std::gmtime(&t));
      std::printf("%-28s %7lld %-11s %-10s %-11s %s\n", m.name.c_str(),
                  static_cast<long long>(m.version),
                  std::string(registry::ModelTypeName(m.type)).c_str(),
                  std::string(registry::StageName(m.stage)).c_str(), when,
                  Headline(m.metrics_json).c_str());
    }
    return 0;
  }
  if (*g_show_cmd) {
    auto m = reg->Show(g_reg.name, g_reg.version);
    if (!m.ok()) return Fail(m.status());
    std::cout << registry::ManifestToJson(*m);
    return 0;
  }
  if (*g_promote_cmd) {
    if (auto s = reg->Promote(g_reg.name, g_reg.version); !s.ok()) return Fail(s);
    std::printf("%s v%lld is production\n", g_reg.name.c_str(),
                static_cast<long long>(g_reg.version));
    return 0;
  }
  if (*g_rollback_cmd) {
    auto v = reg->Rollback(g_reg.name);
    if (!v.ok()) return Fail(v.status());
    std::printf("%s rolled back: v%lld is production\n", g_reg.name.c_str(),
                static_cast<long long>(*v));
    return 0;
  }
  if (*g_import_cmd) {
    auto v = registry::ImportTorchscript(*reg, g_reg.name, g_reg.torchscript, g_reg.vocab,
                                         g_reg.signature);
    if (!v.ok()) return Fail(v.status());
    std::printf("imported %s v%lld (candidate, torchscript)\n", g_reg.name.c_str(),
                static_cast<long long>(*v));
    return 0;
  }
  std::cerr << "error: models needs a subcommand: list|show|promote|rollback|import\n";
  return 2;
}

void RegisterRegistryCommands(CLI::App& cli) {
  auto& t = g_reg.train;
  auto* train = cli.add_subcommand("train", "train a model, evaluate it and register a candidate");
  g_train_cmd = train;
  train->add_option("--model", t.model, "vsknn|sknn|covis|sasrec|slirec|blend")
      ->check(CLI::IsMember({"vsknn", "sknn", "covis", "sasrec", "slirec", "blend"}))
      ->capture_default_str();
  train
      ->add_option("--dataset", t.dataset,
                   "diginetica|yoochoose|retailrocket (session protocol), beauty|yelp|lastfm "
                   "(leave-one-out)")
      ->check(
          CLI::IsMember({"diginetica", "yoochoose", "retailrocket", "beauty", "yelp", "lastfm"}))
      ->capture_default_str();
  train->add_option("--data", t.data_path,
                    "your own file instead: sessions per line (sasrec/slirec: user item... lines "
                    "or a RecBole .inter file with timestamps)");
  train->add_option("--data-dir", t.datasets_dir,
                    "datasets folder (default $STREAMREC_DATASETS or ../shared/datasets)");
  train->add_option("--registry", g_reg.registry, "registry folder")->capture_default_str();
  train->add_option("--name", t.name, "registry name (default <model>-<dataset>)");
  train->add_option("--epochs", t.epochs, "sasrec/slirec: max epochs (default: early stopping)");
  train->add_option("--max-seconds", t.max_seconds,
                    "sasrec/slirec: stop after the epoch past this");
  train->add_option("--threads", t.threads, "sasrec/slirec: torch threads (default 2)");
  train->add_option("--max-len", t.max_len, "sasrec/slirec: most recent items fed (default 50)");
  train
      ->add_option("--max-sessions", t.max_sessions,
                   "train on the newest N sessions (users); 0 all")
      ->capture_default_str();
  train->add_option("--max-test", t.max_test, "evaluate at most N cases (users); 0 all")
      ->capture_default_str();
  AddKnnOptions(train, t.knn);
  train
      ->add_option("--members", t.members,
                   "blend: registered models mixed (equal weights, or see --select), NAME "
                   "(production, else latest) or NAME@N")
      ->delimiter(',');
  train->add_flag("--select", t.select,
                  "vsknn: choose --idf-weighting (0, 1) and --position-decay (0, 1, 2, 4, 8) on a "
                  "validation split of the training data (as evaluate --select); blend: choose "
                  "the members' weights on every 20th training session (held out by sasrec)");
  train->add_flag("--rerank", t.rerank,
                  "blend: as --select, then learn a re-ranker (XGBoost) of the blend's best 30 "
                  "items on the same held-out sessions");
  train->add_flag("--quiet", g_reg.quiet, "no progress output");

  auto* models =
      cli.add_subcommand("models", "the model registry: list|show|promote|rollback|import");
  g_models_cmd = models;
  models->require_subcommand(1);
  auto with_registry = [](CLI::App* cmd) {
    cmd->add_option("--registry", g_reg.registry, "registry folder")->capture_default_str();
  };
  g_list_cmd = models->add_subcommand("list", "every version, or one name's");
  with_registry(g_list_cmd);
  g_list_cmd->add_option("--name", g_reg.name, "only this model");
  g_show_cmd = models->add_subcommand("show", "a version's manifest (JSON)");
  with_registry(g_show_cmd);
  g_show_cmd->add_option("--name", g_reg.name)->required();
  g_show_cmd->add_option("--version", g_reg.version, "default: the latest");
  g_promote_cmd = models->add_subcommand("promote", "make a version production");
  with_registry(g_promote_cmd);
  g_promote_cmd->add_option("--name", g_reg.name)->required();
  g_promote_cmd->add_option("--version", g_reg.version)->required();
  g_rollback_cmd = models->add_subcommand("rollback", "back to the previous production version");
  with_registry(g_rollback_cmd);
  g_rollback_cmd->add_option("--name", g_reg.name)->required();
  g_import_cmd = models->add_subcommand("import", "register your own TorchScript module");
  with_registry(g_import_cmd);
  g_import_cmd->add_option("--name", g_reg.name)->required();
  g_import_cmd->add_option("--torchscript", g_reg.torchscript, "module saved by torch.jit.save")
      ->required()
      ->check(CLI::ExistingFile);
  g_import_cmd->add_option("--vocab", g_reg.vocab, "item ids, one per line (line k = model id k)")
      ->required()
      ->check(CLI::ExistingFile);
  g_import_cmd
      ->add_option("--signature", g_reg.signature,
                   "inputs as JSON: [{\"name\":\"items\",\"type\":\"list<string>\"}] "
                   "or {\"inputs\":[...],\"outputs\":[...]}")
      ->required();
}

}  // namespace

void RegisterModelCommands(CLI::App& cli) {
  RegisterRegistryCommands(cli);
  auto* cmd = cli.add_subcommand("evaluate",
                                 "train a recommender on a shared dataset and score it offline");
  g_evaluate_cmd = cmd;
  cmd->add_option("--model", g_args.model, "pop|covis|sknn|vsknn|all")
      ->check(CLI::IsMember({"pop", "covis", "sknn", "vsknn", "all"}))
      ->capture_default_str();
  cmd->add_option("--dataset", g_args.dataset,
                  "diginetica|yoochoose|retailrocket (session protocol), "
                  "beauty|yelp|lastfm (leave-one-out)")
      ->check(
          CLI::IsMember({"diginetica", "yoochoose", "retailrocket", "beauty", "yelp", "lastfm"}))
      ->capture_default_str();
  cmd->add_option("--data-dir", g_args.data_dir,
                  "datasets folder (default $STREAMREC_DATASETS or ../shared/datasets)");
  cmd->add_option("--max-test", g_args.max_test, "evaluate at most N cases (users); 0 all")
      ->capture_default_str();
  cmd->add_option("--out", g_args.out, "write the results as JSON");
  cmd->add_option("--split", g_args.split,
                  "test, or validation: carved from the training data only (sessions: "
                  "last 10% "
                  "of training sessions; leave-one-out: the second-to-last item)")
      ->check(CLI::IsMember({"test", "validation"}))
      ->capture_default_str();
  AddKnnOptions(cmd, g_args.knn);
  cmd->add_flag("--quiet", g_args.quiet, "no progress bar");
  cmd->add_flag("--select", g_args.select,
                "choose vsknn's --idf-weighting (0, 1) and --position-decay (0, 1, 2, 4, 8) on a "
                "validation split carved from the training data");
}

int RunModelCommand(CLI::App&) {
  if (g_evaluate_cmd && *g_evaluate_cmd) return RunEvaluate();
  if ((g_train_cmd && *g_train_cmd) || (g_models_cmd && *g_models_cmd)) return RunRegistryCommand();
  return -1;
}

}  // namespace streamrec::app
