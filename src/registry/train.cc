#include "registry/train.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
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
#include "models/rerank.h"
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

// Each case's top `depth` from `model`, keeping the prefix's own items (session protocol), asked
// in chunks so that a sequential model scores each chunk in one forward pass.
std::vector<std::vector<m::ScoredItem>> ListsFor(const m::Recommender& model,
                                                 std::span<const m::NextItemCase> cases,
                                                 size_t depth, ProgressBar bar) {
  std::vector<std::vector<m::ScoredItem>> lists;
  lists.reserve(cases.size());
  constexpr size_t kChunk = 512;
  for (size_t first = 0; first < cases.size(); first += kChunk) {
    const size_t last = std::min(cases.size(), first + kChunk);
    std::vector<m::RecommendRequest> requests;
    for (size_t i = first; i < last; ++i) {
      requests.push_back({"eval", "eval", cases[i].prefix, depth, {}});
    }
    for (auto& answer : model.RecommendBatch(requests)) lists.push_back(std::move(answer.items));
    lists.resize(last);  // a member that answered short has nothing for the rest
    bar(last, cases.size());
  }
  return lists;
}

// A member as it was before the validation sessions: session-kNN refit on the other sessions; a
// sequential model must have held out the same sessions itself (SASRec and SLi-Rec on sessions
// do), anything else cannot be validated.
Result<std::shared_ptr<const m::Recommender>> ValidationMember(
    const Registry& registry, const Manifest& stored,
    std::span<const std::vector<std::string>> fit_sessions, size_t all_sessions) {
  const std::string label = stored.name + "@v" + std::to_string(stored.version);
  auto refuse = [&](const std::string& why) {
    return Status::Invalid("invalid_member", "--select: member " + label + " " + why, "members");
  };
  if (stored.type == ModelType::kVsknn || stored.type == ModelType::kSknn) {
    auto options = KnnOptionsFromJson(stored.options_json);
    options.kind = KnnKindOf(stored.type);
    auto knn = std::make_unique<m::SessionKnn>(options);
    for (const auto& session : fit_sessions) knn->AddSession(session);
    return MakeKnnRecommender(std::move(knn), label, /*keep_window_items=*/true);
  }
  if (stored.type != ModelType::kSasrec && stored.type != ModelType::kSlirec) {
    return refuse("is a " + std::string(ModelTypeName(stored.type)) +
                  ": only session-kNN and sequential members can be validated");
  }
  // Its options say whether it held out (and so never trained on) the validation sessions.
  boost::system::error_code ec;
  const auto options = boost::json::parse(stored.options_json, ec);
  const auto* object = ec ? nullptr : options.if_object();
  const auto option = [&](const char* key) -> int64_t {
    const auto* v = object ? object->if_contains(key) : nullptr;
    return v && v->is_int64() ? v->get_int64() : 0;
  };
  const std::string retrain =
      ": retrain it (streamrec train --model " + std::string(ModelTypeName(stored.type)) + ")";
  if (option("holdout_every") != int64_t(m::kSessionHoldoutEvery) || option("patience") <= 0) {
    return refuse("did not hold out every " + std::to_string(m::kSessionHoldoutEvery) +
                  "th session while training" + retrain);
  }
  if (stored.training_data.sequences != all_sessions) {
    return refuse("trained on " + std::to_string(stored.training_data.sequences) +
                  " sessions, the blend has " + std::to_string(all_sessions) + " (--max-sessions)" +
                  retrain);
  }
  return LoadRecommender(registry, stored, label, /*keep_window_items=*/true);
}

// Members a blend's --select can weigh: each gets at least a tenth.
constexpr size_t kMaxSelectMembers = 10;

// Weight vectors to try for n members (2..kMaxSelectMembers): equal shares first (ties keep
// it), then every other split in tenths with each member at least a tenth.
std::vector<std::vector<double>> WeightCandidates(size_t n) {
  std::vector<std::vector<double>> out{std::vector<double>(n, 1.0 / double(n))};
  std::vector<int> tenths(n, 1);
  std::function<void(size_t, int)> fill = [&](size_t member, int left) {
    if (member + 1 == n) {
      tenths[member] = left;
      if (std::all_of(tenths.begin(), tenths.end(), [&](int t) { return t * n == 10; })) return;
      std::vector<double> w;
      for (int t : tenths) w.push_back(t / 10.0);
      out.push_back(std::move(w));
      return;
    }
    for (int t = 1; t <= left - int(n - member - 1); ++t) {
      tenths[member] = t;
      fill(member + 1, left - t);
    }
  };
  if (n >= 2 && n <= kMaxSelectMembers) fill(0, 10);
  return out;
}

// The members' top-kBlendDepth lists on every kSessionHoldoutEvery-th training session, each
// member as it was before those sessions (ValidationMember).
struct ValidationLists {
  std::vector<m::NextItemCase> cases;
  std::vector<std::vector<std::vector<m::ScoredItem>>> by_case;  // [case][member]
  std::vector<m::ScoreScale> scales;
};

Result<ValidationLists> ListValidation(const Registry& registry,
                                       std::span<const BlendMember> members,
                                       std::vector<std::vector<std::string>> sessions,
                                       const TrainRequest& req) {
  const size_t all_sessions = sessions.size();
  ValidationLists out;
  out.cases = m::SplitEveryNthSession(sessions, m::kSessionHoldoutEvery);
  if (out.cases.empty()) {
    return Status::Invalid("no_data", "--select: no validation session has 2 or more items",
                           "select");
  }
  out.by_case.resize(out.cases.size());
  for (const auto& member : members) {
    auto stored = registry.Show(member.name, member.version);
    if (!stored.ok()) return stored.status();
    auto model = ValidationMember(registry, *stored, sessions, all_sessions);
    if (!model.ok()) return model.status();
    auto lists = ListsFor(**model, out.cases, m::kBlendDepth,
                          ProgressBar("validate " + stored->name, req.progress));
    for (size_t c = 0; c < out.cases.size(); ++c) out.by_case[c].push_back(std::move(lists[c]));
    out.scales.push_back(BlendScaleOf(stored->type));
  }
  return out;
}

// An evaluator's `"NDCG@20": .., "HR@20": .., "MRR@20": ..` (JSON members).
std::string Figures20(const m::MultiKEvaluator& e) {
  return "\"NDCG@20\": " + Num(e.Ndcg(20)) + ", \"HR@20\": " + Num(e.HitRate(20)) +
         ", \"MRR@20\": " + Num(e.Mrr(20));
}

// The members' weights that give the best validation NDCG@20 (a figure that rewards both
// hitting and ranking high); a JSON record of the choice in `record`.
std::vector<double> SelectBlendWeights(const ValidationLists& validation, size_t members,
                                       bool progress, std::string* record) {
  std::vector<double> best;
  double best_ndcg = -1;
  std::ostringstream tried;
  for (const auto& weights : WeightCandidates(members)) {
    m::MultiKEvaluator eval({20});
    for (size_t c = 0; c < validation.cases.size(); ++c) {
      eval.Add(m::BlendLists(validation.by_case[c], validation.scales, weights, 20),
               validation.cases[c].target);
    }
    std::ostringstream w;
    for (size_t k = 0; k < weights.size(); ++k) w << (k ? ", " : "") << Num(weights[k]);
    const double ndcg = eval.Ndcg(20);
    if (progress) {
      std::fprintf(stderr,
                   "select: blend weights [%s] validation NDCG@20=%.4f HR@20=%.4f MRR@20=%.4f\n",
                   w.str().c_str(), ndcg, eval.HitRate(20), eval.Mrr(20));
    }
    tried << (tried.tellp() > 0 ? ", " : "") << "{\"weights\": [" << w.str() << "], "
          << Figures20(eval) << "}";
    if (ndcg > best_ndcg) best_ndcg = ndcg, best = weights;
  }
  *record =
      "{\"criterion\": \"NDCG@20\", \"holdout_every\": " + std::to_string(m::kSessionHoldoutEvery) +
      ", \"cases\": " + std::to_string(validation.cases.size()) + ", \"tried\": [" + tried.str() +
      "]}";
  return best;
}

// The blend's re-ranker (models/rerank.h), learned on the validation sessions' blended heads
// and saved at `path`, if it ranks them better than the blend: first checked 2-fold (each half
// of the cases re-ranked by a model of the other half, validation NDCG@20). Whether it was
// kept is the result; a JSON record in `record`.
Result<bool> TrainReranker(const ValidationLists& validation, std::span<const double> weights,
                           const TrainRequest& req, const std::string& path, std::string* record) {
  const auto start = std::chrono::steady_clock::now();
  const size_t n = validation.cases.size();
  std::vector<m::RerankCandidates> groups;
  std::vector<std::string> targets;
  groups.reserve(n);
  for (size_t c = 0; c < n; ++c) {
    groups.push_back(m::RerankFeatures(validation.by_case[c], validation.scales, weights,
                                       validation.cases[c].prefix, m::kRerankCandidates));
    targets.push_back(validation.cases[c].target);
  }
  m::RerankerOptions options;
  if (req.threads > 0) options.threads = req.threads;
  if (req.progress) {
    std::fprintf(stderr, "rerank: %d boosting rounds on %zu validation cases, 2-fold check first\n",
                 options.rounds, n);
  }
  // Halves of the cases in session order (a session's prefixes stay together but at the cut),
  // each re-ranked by a ranker trained on the other half.
  const size_t half = n / 2;
  const std::span<const m::RerankCandidates> all(groups);
  const std::span<const std::string> all_targets(targets);
  m::MultiKEvaluator blended({20}), reranked({20});
  size_t with_target = 0;  // cases whose next click is among their candidates
  for (const auto& [from, to] : {std::pair{size_t{0}, half}, std::pair{half, n}}) {
    const size_t other = from == 0 ? half : 0, other_size = n - (to - from);
    auto fold = m::Reranker::Train(all.subspan(other, other_size),
                                   all_targets.subspan(other, other_size), options);
    // A half with no case to learn from leaves the other half in the blend's order.
    if (!fold.ok() && fold.status().reason != "no_data") return fold.status();
    if (fold.ok()) with_target += fold->groups_trained();
    for (size_t c = from; c < to; ++c) {
      const std::span<const m::ScoredItem> head(groups[c].items.data(),
                                                std::min<size_t>(20, groups[c].items.size()));
      blended.Add(head, targets[c]);
      if (fold.ok()) {
        reranked.Add(fold->Rerank(groups[c], 20), targets[c]);
      } else {
        reranked.Add(head, targets[c]);
      }
    }
  }
  const bool keep = reranked.Ndcg(20) > blended.Ndcg(20);
  if (keep) {
    auto reranker = m::Reranker::Train(groups, targets, options);
    if (!reranker.ok()) return reranker.status();
    if (auto s = reranker->Save(path); !s.ok()) return s;
  }
  if (req.progress) {
    std::fprintf(stderr,
                 "rerank: 2-fold validation NDCG@20 %.4f -> %.4f, MRR@20 %.4f -> %.4f: %s\n",
                 blended.Ndcg(20), reranked.Ndcg(20), blended.Mrr(20), reranked.Mrr(20),
                 keep ? "kept" : "not better, the blend stays as it is");
  }
  *record =
      "{\"objective\": \"rank:pairwise\", \"candidates\": " + std::to_string(m::kRerankCandidates) +
      ", \"rounds\": " + std::to_string(options.rounds) + ", \"cases\": " + std::to_string(n) +
      ", \"cases_with_target\": " + std::to_string(with_target) + ", \"two_fold\": {\"blend\": {" +
      Figures20(blended) + "}, \"reranked\": {" + Figures20(reranked) +
      "}}, \"kept\": " + (keep ? "true" : "false") + ", \"seconds\": " + Num(SecondsSince(start)) +
      "}";
  return keep;
}

// A blend of registered versions (models/blend.h): nothing to fit, scored on the test cases;
// with req.select its weights are chosen on validation sessions of `train` first, and with
// req.rerank a re-ranker of its head is learned there too (kept if it ranks better).
Result<TrainOutcome> TrainBlend(Registry& registry, const TrainRequest& req,
                                std::vector<std::vector<std::string>> train,
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
  std::string selection, rerank_record;
  ScratchDir scratch;
  std::string rerank_path = req.rerank ? scratch.path + "/" + kRerankArtifact : "";
  if (req.select || req.rerank) {
    if (members.size() > kMaxSelectMembers) {
      return Status::Invalid("invalid_members",
                             std::string(req.rerank ? "--rerank" : "--select") +
                                 " weighs at most " + std::to_string(kMaxSelectMembers) +
                                 " members",
                             "members");
    }
    const auto start = std::chrono::steady_clock::now();
    auto validation = ListValidation(registry, members, std::move(train), req);
    if (!validation.ok()) return validation.status();
    const auto weights = SelectBlendWeights(*validation, members.size(), req.progress, &selection);
    for (size_t k = 0; k < members.size(); ++k) members[k].weight = weights[k];
    selection.pop_back();
    selection += ", \"seconds\": " + Num(SecondsSince(start)) + "}";
    if (req.rerank) {
      auto kept = TrainReranker(*validation, weights, req, rerank_path, &rerank_record);
      if (!kept.ok()) return kept.status();
      if (!*kept) rerank_path.clear();
    }
  }
  auto start = std::chrono::steady_clock::now();
  manifest.options_json = BlendOptionsJson(members, !rerank_path.empty());
  auto model = LoadBlendRecommender(registry, manifest.options_json, manifest.name,
                                    /*keep_window_items=*/true, rerank_path);
  if (!model.ok()) return model.status();
  const double load_s = SecondsSince(start);
  start = std::chrono::steady_clock::now();
  m::MultiKEvaluator metrics({10, 20});
  const auto lists = ListsFor(**model, cases, metrics.ks().back(),
                              ProgressBar("evaluate " + manifest.name, req.progress));
  for (size_t i = 0; i < cases.size(); ++i) metrics.Add(lists[i], cases[i].target);
  manifest.metrics_json = MetricsJson(metrics, "session", "test", load_s, SecondsSince(start));
  if (!selection.empty()) {
    manifest.metrics_json.pop_back();
    manifest.metrics_json += ", \"selection\": " + selection + "}";
  }
  std::vector<Artifact> artifacts;
  if (!rerank_record.empty()) {
    manifest.metrics_json.pop_back();
    manifest.metrics_json += ", \"rerank\": " + rerank_record + "}";
  }
  if (!rerank_path.empty()) artifacts.push_back({kRerankArtifact, rerank_path, ""});
  return Finish(registry, std::move(manifest), std::move(artifacts));
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
  if (req.rerank && *type != ModelType::kBlend) {
    return Status::Invalid("invalid_rerank", "--rerank is for --model blend only", "rerank");
  }
  if (req.select && *type != ModelType::kVsknn && *type != ModelType::kBlend) {
    return Status::Invalid("invalid_select", "--select is for --model vsknn or blend only",
                           "select");
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
    if (*type == ModelType::kBlend) {
      return TrainBlend(registry, req, std::move(train), cases, std::move(manifest));
    }
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
    options.kind = KnnKindOf(*type);
    if (req.select) {  // vsknn only (checked above)
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
