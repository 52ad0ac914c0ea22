#include "registry/train.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/clock.h"
#include "common/progress_bar.h"
#include "models/benchmark_datasets.h"
#include "models/eval.h"
#include "models/item_model.h"
#include "registry/model_host.h"
#include "registry/train_sasrec.h"

namespace streamrec::registry {
namespace internal {

std::string Num(double v) {
  std::ostringstream out;
  out.precision(6);
  out << v;
  return out.str();
}

common::Result<TrainOutcome> Finish(Registry& registry, Manifest manifest,
                                    std::vector<Artifact> artifacts) {
  auto version = registry.Register(manifest, artifacts);
  if (!version.ok()) return version.status();
  auto stored = registry.Show(manifest.name, *version);
  if (!stored.ok()) return stored.status();
  return TrainOutcome{*version, std::move(*stored)};
}

std::string MetricsJson(const models::MultiKEvaluator& e, const std::string& protocol,
                        const std::string& split, double train_s, double eval_s) {
  std::ostringstream out;
  out << "{\"protocol\": \"" << protocol << "\", \"split\": \"" << split
      << "\", \"cases\": " << e.cases();
  for (size_t k : e.ks()) {
    out << ", \"HR@" << k << "\": " << Num(e.HitRate(k)) << ", \"MRR@" << k
        << "\": " << Num(e.Mrr(k)) << ", \"NDCG@" << k << "\": " << Num(e.Ndcg(k));
  }
  out << ", \"train_seconds\": " << Num(train_s) << ", \"eval_seconds\": " << Num(eval_s) << "}";
  return out.str();
}

}  // namespace internal

namespace {

using internal::Finish;
using internal::MetricsJson;
using internal::Num;
using internal::ScratchDir;

namespace fs = std::filesystem;
namespace m = streamrec::models;
using common::Code;
using common::Result;
using common::Status;

using models::BenchmarkDataset;
using models::Protocol;

using common::ProgressBar;

using common::SecondsSince;

// Evaluates a trained SessionKnn in place (no second fit).
class KnnView : public m::SessionRecommender {
 public:
  explicit KnnView(const m::SessionKnn& knn) : knn_(knn) {}
  std::string name() const override { return "knn"; }
  void Fit(std::span<const std::vector<std::string>>) override {}
  std::vector<m::ScoredItem> Score(std::span<const std::string> prefix, size_t k,
                                   std::span<const std::string> exclude) const override {
    return knn_.Recommend(prefix, k, exclude);
  }
  std::string Describe() const override { return ""; }

 private:
  const m::SessionKnn& knn_;
};

std::string CovisSnapshot(m::ItemModel& model) {
  // Length-prefixed (tenant, item, bytes) records as ItemModel::TakeDirty returns them, which
  // ItemModel::Restore reads back.
  std::string out;
  auto put = [&](std::string_view s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), sizeof(n));
    out.append(s);
  };
  for (const auto& d : model.TakeDirty()) {
    if (!d.bytes) continue;
    put(d.tenant);
    put(d.item);
    put(*d.bytes);
  }
  return out;
}

// "name" (the production version, else the latest) or "name@N", trained on the file at
// `sha256` (a member trained on other data would rank other items).
Result<BlendMember> ResolveMember(const Registry& registry, const std::string& spec,
                                  const std::string& sha256) {
  auto invalid = [&](const std::string& why) {
    return Status::Invalid("invalid_member", "--members: " + spec + ": " + why, "members");
  };
  const size_t at = spec.rfind('@');
  BlendMember member{spec.substr(0, at), 0};
  if (at != std::string::npos) {
    const std::string digits = spec.substr(at + 1);
    const bool number = !digits.empty() && digits.size() < 10 &&
                        std::all_of(digits.begin(), digits.end(),
                                    [](unsigned char c) { return std::isdigit(c) != 0; });
    if (!number || std::stoll(digits) < 1) return invalid("not NAME or NAME@N (N >= 1)");
    member.version = std::stoll(digits);
  } else if (auto production = registry.ProductionVersion(member.name);
             production.ok() && *production > 0) {
    member.version = *production;
  }
  auto stored = registry.Show(member.name, member.version);
  if (!stored.ok()) return invalid(stored.status().message);
  if (stored->training_data.sha256 != sha256) {
    return invalid("trained on " + stored->training_data.path + ", not on the blend's data");
  }
  member.version = stored->version;
  return member;
}

// A blend of registered versions (models/blend.h): nothing to fit, scored on the test cases.
Result<TrainOutcome> TrainBlend(Registry& registry, const TrainRequest& req,
                                std::span<const m::NextItemCase> cases, Manifest manifest) {
  std::vector<BlendMember> members;
  for (const auto& spec : req.members) {
    auto member = ResolveMember(registry, spec, manifest.training_data.sha256);
    if (!member.ok()) return member.status();
    for (const auto& other : members) {
      if (other.name == member->name && other.version == member->version) {
        return Status::Invalid("invalid_member", "--members: " + spec + " given twice", "members");
      }
    }
    members.push_back(std::move(*member));
  }
  manifest.options_json = BlendOptionsJson(members);
  auto start = std::chrono::steady_clock::now();
  auto model = LoadRecommender(registry, manifest, manifest.name, /*keep_window_items=*/true);
  if (!model.ok()) return model.status();
  const double load_s = SecondsSince(start);
  start = std::chrono::steady_clock::now();
  ProgressBar bar("evaluate " + manifest.name, req.progress);
  m::MultiKEvaluator metrics({10, 20});
  constexpr size_t kChunk = 512;  // one forward pass of a sequential member per chunk
  for (size_t first = 0; first < cases.size(); first += kChunk) {
    const size_t last = std::min(cases.size(), first + kChunk);
    std::vector<m::RecommendRequest> requests;
    for (size_t i = first; i < last; ++i) {
      requests.push_back({"eval", "eval", cases[i].prefix, metrics.ks().back(), {}});
    }
    auto answers = (*model)->RecommendBatch(requests);
    for (size_t i = first; i < last; ++i) metrics.Add(answers[i - first].items, cases[i].target);
    bar(last, cases.size());
  }
  manifest.metrics_json = MetricsJson(metrics, "session", "test", load_s, SecondsSince(start));
  return Finish(registry, std::move(manifest), {});
}

}  // namespace

std::string CurveSvg(const std::vector<std::array<double, 3>>& rows, const std::string& title) {
  constexpr double kW = 640, kH = 360, kLeft = 60, kRight = 60, kTop = 40, kBottom = 40;
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  double max_epoch = 1, min_loss = 0, max_loss = 1, max_ndcg = 1e-9;
  if (!rows.empty()) {
    max_epoch = std::max(1.0, rows.back()[0]);
    min_loss = max_loss = rows.front()[1];
  }
  for (const auto& r : rows) {
    min_loss = std::min(min_loss, r[1]);
    max_loss = std::max(max_loss, r[1]);
    max_ndcg = std::max(max_ndcg, r[2]);
  }
  if (max_loss - min_loss < 1e-12) max_loss = min_loss + 1;
  auto x = [&](double epoch) {
    return kLeft + pw * (rows.size() < 2 ? 0.5 : (epoch - 1) / std::max(1.0, max_epoch - 1));
  };
  auto y_loss = [&](double v) { return kTop + ph * (1 - (v - min_loss) / (max_loss - min_loss)); };
  auto y_ndcg = [&](double v) { return kTop + ph * (1 - v / max_ndcg); };
  std::ostringstream out;
  out.precision(5);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kW / 2 << "\" y=\"20\" text-anchor=\"middle\">" << title << "</text>\n"
      << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
  auto polyline = [&](auto y, int column, const char* color) {
    out << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (const auto& r : rows) out << x(r[0]) << "," << y(r[column]) << " ";
    out << "\"/>\n";
  };
  polyline(y_loss, 1, "#1f77b4");
  polyline(y_ndcg, 2, "#d62728");
  out << "<text x=\"" << kLeft - 5 << "\" y=\"" << kTop + 4
      << "\" text-anchor=\"end\" fill=\"#1f77b4\">" << Num(max_loss) << "</text>\n"
      << "<text x=\"" << kLeft - 5 << "\" y=\"" << kTop + ph
      << "\" text-anchor=\"end\" fill=\"#1f77b4\">" << Num(min_loss) << "</text>\n"
      << "<text x=\"" << kLeft + pw + 5 << "\" y=\"" << kTop + 4 << "\" fill=\"#d62728\">"
      << Num(max_ndcg) << "</text>\n"
      << "<text x=\"" << kLeft + pw + 5 << "\" y=\"" << kTop + ph
      << "\" fill=\"#d62728\">0</text>\n"
      << "<text x=\"" << kLeft << "\" y=\"" << kH - 12 << "\">epoch 1</text>\n"
      << "<text x=\"" << kLeft + pw << "\" y=\"" << kH - 12 << "\" text-anchor=\"end\">epoch "
      << max_epoch << "</text>\n"
      << "<text x=\"" << kW / 2 << "\" y=\"" << kH - 12 << "\" text-anchor=\"middle\">"
      << "<tspan fill=\"#1f77b4\">training loss</tspan>  <tspan fill=\"#d62728\">validation "
         "NDCG@10</tspan></text>\n"
      << "</svg>\n";
  return out.str();
}

Result<TrainOutcome> TrainAndRegister(Registry& registry, const TrainRequest& req) {
  auto type = ParseModelType(req.model);
  if (!type.ok() || *type == ModelType::kTorchscript) {
    return Status::Invalid("invalid_model", "--model must be vsknn|sknn|covis|sasrec|slirec|blend",
                           "model");
  }
  std::string datasets_dir =
      req.datasets_dir.empty() ? models::DefaultDatasetsDir() : req.datasets_dir;
  const BenchmarkDataset* spec = nullptr;
  std::string path, dataset_label;
  if (!req.data_path.empty()) {
    path = req.data_path;
    dataset_label = fs::path(path).stem().string();
  } else {
    spec = models::FindBenchmarkDataset(req.dataset);
    if (!spec)
      return Status::Invalid("invalid_dataset", "unknown --dataset " + req.dataset, "dataset");
    path = (fs::path(datasets_dir) / spec->train).string();
    dataset_label = spec->name;
  }
  const bool sequential = *type == ModelType::kSasrec || *type == ModelType::kSlirec;
  // SASRec on a file of its own reads `user item item ...` lines, tested leave-one-out.
  const bool leave_one_out = spec ? spec->protocol == Protocol::kLeaveOneOut : sequential;

  if (*type != ModelType::kBlend && !req.members.empty()) {
    return Status::Invalid("invalid_members", "--members is for --model blend only", "members");
  }
  if (*type == ModelType::kBlend && req.members.size() < 2) {
    return Status::Invalid("invalid_members",
                           "--model blend needs --members NAME[@N],NAME[@N] (2 or more)",
                           "members");
  }
  if (req.select_knn && *type != ModelType::kVsknn) {
    return Status::Invalid("invalid_select", "--select is for --model vsknn only", "select");
  }
  if (*type == ModelType::kBlend && leave_one_out) {
    return Status::Invalid("invalid_dataset",
                           "a blend is scored with the session protocol: use a session dataset "
                           "(diginetica, yoochoose, retailrocket) or a sessions file",
                           "dataset");
  }

  Manifest manifest;
  manifest.name = req.name.empty() ? req.model + "-" + dataset_label : req.name;
  if (auto s = ValidateName(manifest.name); !s.ok()) return s;
  manifest.type = *type;
  manifest.training_data.path = fs::absolute(path).string();
  auto sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  manifest.training_data.sha256 = *sha;

  if (sequential && leave_one_out) {
    return internal::TrainSasrec(registry, req, path, std::move(manifest));
  }

  // Session models: sessions, or (leave-one-out datasets) every user's items but the last two.
  std::vector<std::vector<std::string>> train;
  std::vector<m::NextItemCase> cases;
  std::vector<m::UserSequence> users;
  if (!leave_one_out) {
    auto sessions = m::ReadSessions(path);
    if (!sessions.ok()) return sessions.status();
    train = std::move(*sessions);
    // The newest sessions: the file is in time order and the test cases follow it.
    if (req.max_sessions && train.size() > req.max_sessions) {
      train.erase(train.begin(), train.end() - static_cast<ptrdiff_t>(req.max_sessions));
    }
    if (spec) {
      auto read =
          m::ReadNextItemCases((fs::path(datasets_dir) / spec->test).string(), req.max_test);
      if (!read.ok()) return read.status();
      cases = std::move(*read);
    } else {
      // Own data: predict the next clicks of the newest 10% of sessions from the older 90%.
      cases = m::SplitNewestSessions(train);
      if (req.max_test && cases.size() > req.max_test) cases.resize(req.max_test);
    }
    if (sequential) {
      return internal::TrainSasrecOnSessions(registry, req, std::move(train), cases,
                                             std::move(manifest));
    }
    if (*type == ModelType::kBlend) return TrainBlend(registry, req, cases, std::move(manifest));
  } else {
    auto read = m::ReadUserSequences(path);
    if (!read.ok()) return read.status();
    users = std::move(*read);
    if (req.max_sessions && users.size() > req.max_sessions) users.resize(req.max_sessions);
    train = m::LeaveOneOutTraining(users);
    if (req.max_test && users.size() > req.max_test) users.resize(req.max_test);
  }
  std::unordered_set<std::string_view> items;
  for (const auto& s : train) {
    manifest.training_data.events += s.size();
    for (const auto& i : s) items.insert(i);
  }
  manifest.training_data.sequences = train.size();
  manifest.training_data.items = items.size();

  ScratchDir scratch;
  std::vector<Artifact> artifacts;
  std::unique_ptr<m::SessionRecommender> owned;
  std::unique_ptr<m::SessionKnn> knn;
  const m::SessionRecommender* model = nullptr;
  auto start = std::chrono::steady_clock::now();
  ProgressBar fit_bar("fit " + req.model, req.progress);
  if (*type == ModelType::kCovis) {
    owned = m::MakeCovisitationRecommender();
    owned->Fit(train);
    model = owned.get();
    // The artifact is a replay into an ItemModel of its own (the adapter keeps its private).
    m::ItemModel item_model(m::ItemModelOptions{});
    m::ReplaySessions(item_model, train);
    artifacts.push_back({"covis.bin", "", CovisSnapshot(item_model)});
    manifest.options_json = "{\"window\": 5, \"replay_tenant\": \"eval\"}";
  } else {
    m::SessionKnnOptions options = req.knn;
    options.kind = *type == ModelType::kSknn ? m::SessionKnnOptions::Kind::kSknn
                                             : m::SessionKnnOptions::Kind::kVsknn;
    if (req.select_knn) {  // vsknn only (checked above)
      options = m::SelectVsknnOptions(options, train, users, [&](const std::string& line) {
        if (req.progress) std::fprintf(stderr, "%s\n", line.c_str());
      });
    }
    knn = std::make_unique<m::SessionKnn>(options);
    for (size_t i = 0; i < train.size(); ++i) {
      knn->AddSession(train[i]);
      if (i % 4096 == 0 || i + 1 == train.size()) fit_bar(i + 1, train.size());
    }
    const std::string file = scratch.path + "/knn.bin";
    if (auto s = knn->Save(file); !s.ok()) return s;
    artifacts.push_back({"knn.bin", file, ""});
    manifest.options_json = KnnOptionsJson(options);
    owned = std::make_unique<KnnView>(*knn);
    model = owned.get();
  }
  const double train_s = SecondsSince(start);
  start = std::chrono::steady_clock::now();
  ProgressBar eval_bar("evaluate " + dataset_label, req.progress);
  m::MultiKEvaluator metrics =
      leave_one_out ? m::EvaluateLeaveOneOut(*model, users, false, {5, 10, 20}, std::ref(eval_bar))
                    : m::EvaluateSessions(*model, cases, {10, 20}, std::ref(eval_bar));
  manifest.metrics_json = MetricsJson(metrics, leave_one_out ? "leave-one-out" : "session", "test",
                                      train_s, SecondsSince(start));
  return Finish(registry, std::move(manifest), std::move(artifacts));
}

}  // namespace streamrec::registry
