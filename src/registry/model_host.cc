#include "registry/model_host.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cassert>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#ifdef STREAMREC_HAVE_TORCH
#include "models/torch/sasrec.h"
#include "models/torch/torchscript_model.h"
#endif

#include "models/blend.h"
#include "models/rerank.h"

namespace streamrec::registry {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace m = streamrec::models;
using common::Code;
using common::Result;
using common::Status;

class KnnRecommender final : public m::Recommender {
 public:
  KnnRecommender(std::unique_ptr<m::SessionKnn> knn, std::string label, bool keep_window_items)
      : knn_(std::move(knn)), label_(std::move(label)), keep_window_items_(keep_window_items) {}
  m::RecommenderOutput Recommend(std::string_view, std::string_view,
                                 std::span<const std::string> items, size_t n) const override {
    // Served lists leave the window's own items out, as the co-visitation list does.
    return {knn_->Recommend(items, n, keep_window_items_ ? std::span<const std::string>{} : items),
            label_};
  }

 private:
  std::unique_ptr<m::SessionKnn> knn_;
  std::string label_;
  bool keep_window_items_;
};

// Members' lists mixed by models::BlendLists (models/blend.h), the head re-ranked when the
// blend learned a re-ranker (models/rerank.h).
class BlendRecommender final : public m::Recommender {
 public:
  struct Member {
    std::shared_ptr<const m::Recommender> model;
    m::ScoreScale scale;
    double weight;  // 0: equal shares
  };
  BlendRecommender(std::vector<Member> members, std::string label,
                   std::unique_ptr<const m::Reranker> reranker)
      : members_(std::move(members)), label_(std::move(label)), reranker_(std::move(reranker)) {
    for (const auto& member : members_) {
      scales_.push_back(member.scale);
      if (member.weight > 0) weights_.push_back(member.weight);
    }
    // BlendMembersFromJson gives every member a weight or none.
    assert(weights_.empty() || weights_.size() == members_.size());
  }
  m::RecommenderOutput Recommend(std::string_view tenant, std::string_view user,
                                 std::span<const std::string> items, size_t n) const override {
    const m::RecommendRequest request{tenant, user, items, n, {}};
    return std::move(RecommendBatch({&request, 1})[0]);
  }
  //! Each member answers the whole batch in one call (SASRec: one forward pass).
  std::vector<m::RecommenderOutput> RecommendBatch(
      std::span<const m::RecommendRequest> requests) const override {
    std::vector<m::RecommendRequest> deeper(requests.begin(), requests.end());
    for (auto& r : deeper) r.n = std::max(r.n, m::kBlendDepth);
    std::vector<std::vector<m::RecommenderOutput>> answers;
    for (const auto& member : members_) answers.push_back(member.model->RecommendBatch(deeper));
    std::vector<m::RecommenderOutput> out(requests.size());
    std::vector<std::vector<m::ScoredItem>> lists(members_.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      for (size_t k = 0; k < members_.size(); ++k) {
        // A member that answered short counts as having nothing for the rest.
        lists[k] =
            i < answers[k].size() ? std::move(answers[k][i].items) : std::vector<m::ScoredItem>{};
      }
      const size_t n = requests[i].n;
      out[i].model = label_;
      out[i].items = reranker_
                         ? reranker_->Rerank(
                               m::RerankFeatures(lists, scales_, weights_, requests[i].items, n), n)
                         : m::BlendLists(lists, scales_, weights_, n);
    }
    return out;
  }

 private:
  std::vector<Member> members_;
  std::vector<m::ScoreScale> scales_;
  std::vector<double> weights_;  // empty: equal
  std::string label_;
  std::unique_ptr<const m::Reranker> reranker_;  // null: the blend's order
};

// The declared inputs in the contract's terms (index into kScriptFields).
struct ScriptField {
  const char* name;
  const char* type;
};
constexpr ScriptField kScriptFields[] = {
    {"items", "list<string>"}, {"timestamps", "list<int64>"}, {"user_id", "string"}};

Result<std::vector<int>> ScriptFieldIndices(const std::vector<Field>& inputs) {
  std::vector<int> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string where = "signature.inputs[" + std::to_string(i) + "]";
    int found = -1;
    for (size_t f = 0; f < std::size(kScriptFields); ++f) {
      if (inputs[i].name == kScriptFields[f].name) found = static_cast<int>(f);
    }
    if (found < 0) {
      return Status::Invalid("invalid_signature",
                             where + ": unknown input \"" + inputs[i].name +
                                 "\" (a TorchScript module takes items, timestamps, user_id)",
                             "signature");
    }
    if (inputs[i].type != kScriptFields[found].type) {
      return Status::Invalid("invalid_signature",
                             where + ": " + inputs[i].name + " must have type " +
                                 kScriptFields[found].type + ", got " + inputs[i].type,
                             "signature");
    }
    if (std::find(out.begin(), out.end(), found) != out.end()) {
      return Status::Invalid("invalid_signature", where + ": " + inputs[i].name + " declared twice",
                             "signature");
    }
    out.push_back(found);
  }
  if (std::find(out.begin(), out.end(), 0) == out.end()) {
    return Status::Invalid("invalid_signature", "signature.inputs must declare \"items\"",
                           "signature");
  }
  return out;
}

#ifdef STREAMREC_HAVE_TORCH
// External item ids <-> model ids: line k of the vocabulary file is model id k + first_id.
class Vocabulary {
 public:
  Vocabulary(std::vector<std::string> ids, int64_t first_id)
      : ids_(std::move(ids)), first_id_(first_id) {
    for (size_t i = 0; i < ids_.size(); ++i) index_.emplace(ids_[i], int64_t(i) + first_id_);
  }
  //! Model ids of the known items, in order; unknown items are skipped.
  template <typename Int>
  std::vector<Int> Map(std::span<const std::string> items) const {
    std::vector<int64_t> no_times;
    return MapTimed<Int>(items, {}, &no_times);
  }
  //! As Map, with the known items' event times in unix seconds (what time-aware sequential
  //! models read) when `times_ms` has one per item; else `seconds` stays empty (unknown).
  template <typename Int>
  std::vector<Int> MapTimed(std::span<const std::string> items, std::span<const int64_t> times_ms,
                            std::vector<int64_t>* seconds) const {
    std::vector<Int> out;
    const bool timed = times_ms.size() == items.size();
    for (size_t i = 0; i < items.size(); ++i) {
      auto it = index_.find(items[i]);
      if (it == index_.end()) continue;
      out.push_back(static_cast<Int>(it->second));
      if (timed) seconds->push_back(times_ms[i] / 1000);
    }
    return out;
  }
  //! nullptr when the model id has no line.
  const std::string* External(int64_t id) const {
    const int64_t line = id - first_id_;
    return line >= 0 && line < int64_t(ids_.size()) ? &ids_[line] : nullptr;
  }
  size_t size() const { return ids_.size(); }

 private:
  std::vector<std::string> ids_;
  int64_t first_id_;
  std::unordered_map<std::string, int64_t> index_;
};

Result<std::vector<std::string>> ReadVocabulary(const fs::path& path, const std::string& label) {
  std::ifstream in(path);
  if (!in) return Status::Internal("cannot read the vocabulary of " + label + ": " + path.string());
  std::vector<std::string> vocab;
  for (std::string line; std::getline(in, line);) vocab.push_back(line);
  return vocab;
}

// Turns (model id, score) pairs into the answer; ids without a vocabulary line are dropped.
template <typename Pairs>
m::RecommenderOutput Answer(const Pairs& top, const Vocabulary& vocab, const std::string& label) {
  m::RecommenderOutput out{{}, label};
  for (const auto& [id, score] : top) {
    if (const std::string* item = vocab.External(id)) out.items.push_back({*item, score});
  }
  return out;
}

Result<std::vector<m::ScriptInput>> ScriptInputs(const std::vector<Field>& inputs) {
  auto indices = ScriptFieldIndices(inputs);
  if (!indices.ok()) return indices.status();
  constexpr m::ScriptInput kInputs[] = {m::ScriptInput::kItems, m::ScriptInput::kTimestamps,
                                        m::ScriptInput::kUserId};
  std::vector<m::ScriptInput> out;
  for (int i : *indices) out.push_back(kInputs[i]);
  return out;
}

// SASRec and its SLi-Rec-style variant (vocabulary line k = item id k + 1). Event times reach
// the model through RecommendBatch (the pipeline's windows); a single Recommend has none, so
// SLi-Rec then sees unknown gaps.
class SasrecRecommender final : public m::Recommender {
 public:
  SasrecRecommender(m::SasrecModel model, std::vector<std::string> vocab, std::string label,
                    bool keep_window_items)
      : model_(std::move(model)),
        vocab_(std::move(vocab), 1),
        label_(std::move(label)),
        mask_history_(!keep_window_items) {}
  m::RecommenderOutput Recommend(std::string_view, std::string_view,
                                 std::span<const std::string> items, size_t n) const override {
    auto history = vocab_.Map<int32_t>(items);
    if (history.empty()) return {{}, label_};  // cold: only unknown items
    return Answer(model_.TopK(history, n, mask_history_), vocab_, label_);
  }
  //! Every user with a known item in one forward pass (TopKBatch).
  std::vector<m::RecommenderOutput> RecommendBatch(
      std::span<const m::RecommendRequest> requests) const override {
    std::vector<m::RecommenderOutput> out(requests.size(), m::RecommenderOutput{{}, label_});
    std::vector<std::vector<int32_t>> histories;
    std::vector<std::vector<int64_t>> times;  // parallel to histories; empty: unknown
    std::vector<size_t> asked;
    size_t k = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      std::vector<int64_t> seconds;
      auto history = vocab_.MapTimed<int32_t>(requests[i].items, requests[i].times, &seconds);
      if (history.empty()) continue;  // cold: only unknown items
      histories.push_back(std::move(history));
      times.push_back(std::move(seconds));
      asked.push_back(i);
      k = std::max(k, requests[i].n);
    }
    auto lists = model_.TopKBatch(histories, k, mask_history_, times);
    for (size_t r = 0; r < asked.size(); ++r) {
      auto& list = lists[r];
      if (list.size() > requests[asked[r]].n) list.resize(requests[asked[r]].n);
      out[asked[r]] = Answer(list, vocab_, label_);
    }
    return out;
  }

 private:
  m::SasrecModel model_;
  Vocabulary vocab_;
  std::string label_;
  bool mask_history_;
};

// A user's TorchScript module (models/torch/torchscript_model.h; vocabulary line k = index k).
class TorchscriptRecommender final : public m::Recommender {
 public:
  TorchscriptRecommender(m::TorchscriptModel model, std::vector<std::string> vocab,
                         std::string label, bool keep_window_items)
      : model_(std::move(model)),
        vocab_(std::move(vocab), 0),
        label_(std::move(label)),
        mask_history_(!keep_window_items) {}
  m::RecommenderOutput Recommend(std::string_view, std::string_view user,
                                 std::span<const std::string> items, size_t n) const override {
    auto history = vocab_.Map<int64_t>(items);
    if (history.empty()) return {{}, label_};  // cold: only unknown items
    return Answer(model_.TopK(user, history, {}, n, mask_history_), vocab_, label_);
  }

 private:
  m::TorchscriptModel model_;
  Vocabulary vocab_;
  std::string label_;
  bool mask_history_;
};
#endif

}  // namespace

Status CheckTorchscript(const std::string& module_path, const std::vector<Field>& inputs,
                        size_t vocabulary_size) {
#ifdef STREAMREC_HAVE_TORCH
  auto script_inputs = ScriptInputs(inputs);
  if (!script_inputs.ok()) return script_inputs.status();
  auto model = m::TorchscriptModel::Load(module_path, std::move(*script_inputs),
                                         static_cast<int64_t>(vocabulary_size));
  return model.ok() ? Status::Ok() : model.status();
#else
  (void)module_path, (void)vocabulary_size;
  auto indices = ScriptFieldIndices(inputs);
  return indices.ok() ? Status::Ok() : indices.status();
#endif
}

std::string KnnOptionsJson(const m::SessionKnnOptions& o) {
  json::object out{{"kind", o.kind == m::SessionKnnOptions::Kind::kSknn ? "sknn" : "vsknn"},
                   {"k", o.k},
                   {"sample_size", o.sample_size},
                   {"idf_weighting", o.idf_weighting},
                   {"position_decay", o.position_decay},
                   {"max_sessions", o.max_sessions},
                   {"max_session_length", o.max_session_length},
                   {"max_open_sessions", o.max_open_sessions}};
  return json::serialize(out);
}

m::SessionKnnOptions KnnOptionsFromJson(std::string_view text) {
  m::SessionKnnOptions o;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  const auto* obj = ec ? nullptr : v.if_object();
  if (!obj) return o;
  auto size = [&](const char* key, size_t* out) {
    if (const auto* e = obj->if_contains(key)) {
      if (e->is_uint64()) *out = e->get_uint64();
      if (e->is_int64() && e->get_int64() >= 0) *out = static_cast<size_t>(e->get_int64());
    }
  };
  size("k", &o.k);
  size("sample_size", &o.sample_size);
  size("max_sessions", &o.max_sessions);
  size("max_session_length", &o.max_session_length);
  size("max_open_sessions", &o.max_open_sessions);
  if (const auto* e = obj->if_contains("idf_weighting"); e && e->is_number()) {
    o.idf_weighting = e->to_number<double>();
  }
  if (const auto* e = obj->if_contains("position_decay"); e && e->is_number()) {
    o.position_decay = e->to_number<double>();
  }
  if (const auto* e = obj->if_contains("kind"); e && e->is_string()) {
    o.kind = e->get_string() == "sknn" ? m::SessionKnnOptions::Kind::kSknn
                                       : m::SessionKnnOptions::Kind::kVsknn;
  }
  return o;
}

Result<std::vector<BlendMember>> BlendMembersFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  const auto* obj = ec ? nullptr : v.if_object();
  const auto* list = obj ? obj->if_contains("members") : nullptr;
  if (!list || !list->is_array() || list->as_array().size() < 2) {
    return Status::Invalid("invalid_blend", "a blend's options need \"members\": 2 or more",
                           "members");
  }
  std::vector<BlendMember> out;
  for (const auto& entry : list->as_array()) {
    const auto* member = entry.if_object();
    const auto* name = member ? member->if_contains("name") : nullptr;
    const auto* version = member ? member->if_contains("version") : nullptr;
    if (!name || !name->is_string() || !version || !version->is_int64() ||
        version->get_int64() < 1) {
      return Status::Invalid("invalid_blend", "each blend member needs a name and a version >= 1",
                             "members");
    }
    double weight = 0;
    if (const auto* w = member->if_contains("weight")) {
      if (!w->is_number() || !std::isfinite(w->to_number<double>()) ||
          !(w->to_number<double>() > 0)) {
        return Status::Invalid("invalid_blend", "a blend member's weight must be a number > 0",
                               "members");
      }
      weight = w->to_number<double>();
    }
    out.push_back({std::string(name->get_string()), version->get_int64(), weight});
  }
  const auto weighted =
      std::count_if(out.begin(), out.end(), [](const auto& m) { return m.weight > 0; });
  if (weighted != 0 && weighted != static_cast<ptrdiff_t>(out.size())) {
    return Status::Invalid("invalid_blend", "give every blend member a weight, or none", "members");
  }
  return out;
}

std::string BlendOptionsJson(std::span<const BlendMember> members, bool rerank) {
  json::array list;
  for (const auto& member : members) {
    json::object entry{{"name", member.name}, {"version", member.version}};
    if (member.weight > 0) entry["weight"] = member.weight;
    list.push_back(std::move(entry));
  }
  json::object options{{"members", std::move(list)}};
  if (rerank) options["rerank"] = true;
  return json::serialize(options);
}

bool BlendHasReranker(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  const auto* obj = ec ? nullptr : v.if_object();
  const auto* rerank = obj ? obj->if_contains("rerank") : nullptr;
  return rerank && rerank->is_bool() && rerank->get_bool();
}

std::shared_ptr<const m::Recommender> MakeKnnRecommender(std::unique_ptr<m::SessionKnn> knn,
                                                         std::string label,
                                                         bool keep_window_items) {
  return std::make_shared<KnnRecommender>(std::move(knn), std::move(label), keep_window_items);
}

m::SessionKnnOptions::Kind KnnKindOf(ModelType type) {
  return type == ModelType::kSknn ? m::SessionKnnOptions::Kind::kSknn
                                  : m::SessionKnnOptions::Kind::kVsknn;
}

m::ScoreScale BlendScaleOf(ModelType type) {
  const bool votes = type == ModelType::kVsknn || type == ModelType::kSknn;
  return votes ? m::ScoreScale::kSimilarity : m::ScoreScale::kLogit;
}

Result<std::shared_ptr<const m::Recommender>> LoadBlendRecommender(const Registry& registry,
                                                                   std::string_view options_json,
                                                                   std::string label,
                                                                   bool keep_window_items,
                                                                   const std::string& rerank_path) {
  auto members = BlendMembersFromJson(options_json);
  if (!members.ok()) return members.status();
  std::vector<BlendRecommender::Member> loaded;
  for (const auto& member : *members) {
    auto stored = registry.Show(member.name, member.version);
    if (!stored.ok()) {
      return Status::Invalid("invalid_blend",
                             label + ": member " + member.name + "@v" +
                                 std::to_string(member.version) + ": " + stored.status().message,
                             "members");
    }
    if (stored->type == ModelType::kBlend || stored->type == ModelType::kCovis) {
      return Status::Invalid("invalid_blend",
                             "a blend member cannot be a " +
                                 std::string(ModelTypeName(stored->type)) + ": " + member.name,
                             "members");
    }
    auto model = LoadRecommender(
        registry, *stored, member.name + "@v" + std::to_string(member.version), keep_window_items);
    if (!model.ok()) return model.status();
    loaded.push_back({std::move(*model), BlendScaleOf(stored->type), member.weight});
  }
  std::unique_ptr<const m::Reranker> reranker;
  if (!rerank_path.empty()) {
    auto read = m::Reranker::Load(rerank_path, m::RerankFeatureCount(loaded.size()));
    if (!read.ok()) return read.status();
    reranker = std::make_unique<const m::Reranker>(std::move(*read));
  }
  return std::shared_ptr<const m::Recommender>(
      std::make_shared<BlendRecommender>(std::move(loaded), std::move(label), std::move(reranker)));
}

Result<std::shared_ptr<const m::Recommender>> LoadRecommender(const Registry& registry,
                                                              const Manifest& manifest,
                                                              std::string label,
                                                              bool keep_window_items) {
  const fs::path dir = registry.VersionDir(manifest.name, manifest.version);
  switch (manifest.type) {
    case ModelType::kBlend:
      return LoadBlendRecommender(
          registry, manifest.options_json, std::move(label), keep_window_items,
          BlendHasReranker(manifest.options_json) ? (dir / kRerankArtifact).string()
                                                  : std::string());
    case ModelType::kVsknn:
    case ModelType::kSknn: {
      auto options = KnnOptionsFromJson(manifest.options_json);
      options.kind = KnnKindOf(manifest.type);
      auto knn = std::make_unique<m::SessionKnn>(options);
      if (auto s = knn->Load((dir / "knn.bin").string()); !s.ok()) return s;
      return MakeKnnRecommender(std::move(knn), std::move(label), keep_window_items);
    }
    case ModelType::kSasrec:
    case ModelType::kSlirec:
    case ModelType::kTorchscript: {
#ifdef STREAMREC_HAVE_TORCH
      auto vocab = ReadVocabulary(
          dir / (manifest.vocabulary.empty() ? "vocab.txt" : manifest.vocabulary), label);
      if (!vocab.ok()) return vocab.status();
      const std::string model_path = (dir / "model.pt").string();
      if (manifest.type == ModelType::kTorchscript) {
        auto inputs = ScriptInputs(manifest.inputs);
        if (!inputs.ok()) return inputs.status();
        auto model = m::TorchscriptModel::Load(model_path, std::move(*inputs), vocab->size());
        if (!model.ok()) return model.status();
        return std::shared_ptr<const m::Recommender>(std::make_shared<TorchscriptRecommender>(
            std::move(*model), std::move(*vocab), std::move(label), keep_window_items));
      }
      auto model = m::SasrecModel::Load(model_path);
      if (!model.ok()) return model.status();
      return std::shared_ptr<const m::Recommender>(std::make_shared<SasrecRecommender>(
          std::move(*model), std::move(*vocab), std::move(label), keep_window_items));
#else
      return Status::Make(Code::kUnavailable, "no_torch",
                          "built without LibTorch: cannot serve " + label);
#endif
    }
    case ModelType::kCovis:
      return Status::Invalid("not_servable",
                             std::string(ModelTypeName(manifest.type)) +
                                 " models are not served by ModelHost: " + label,
                             "type");
  }
  // No default above, so a new type without a loader is a -Wswitch warning.
  return Status::Internal("unknown model type of " + label);
}

ModelHost::ModelHost(Registry registry, std::string name, ModelHostOptions options)
    : registry_(std::move(registry)), name_(std::move(name)), options_(options) {
  production_.store(std::make_shared<const Served>());
}

Result<std::shared_ptr<ModelHost>> ModelHost::Open(Registry registry, std::string name,
                                                   ModelHostOptions options) {
  if (auto s = ValidateName(name); !s.ok()) return s;
  std::shared_ptr<ModelHost> host(new ModelHost(std::move(registry), std::move(name), options));
  if (auto s = host->Reload(); !s.ok()) return s;
  if (options.b_version > 0 && options.b_percent > 0) {
    auto manifest = host->registry_.Show(host->name_, options.b_version);
    if (!manifest.ok()) return manifest.status();
    auto model = LoadRecommender(host->registry_, *manifest,
                                 host->name_ + "@v" + std::to_string(options.b_version) + "/B");
    if (!model.ok()) return model.status();
    host->b_ = std::make_shared<const Served>(Served{options.b_version, std::move(*model)});
  }
  if (options.poll_ms > 0) host->poller_ = std::thread([h = host.get()] { h->PollLoop(); });
  return host;
}

ModelHost::~ModelHost() {
  {
    std::lock_guard lock(poll_mu_);
    stopping_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void ModelHost::PollLoop() {
  std::unique_lock lock(poll_mu_);
  while (!poll_cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms),
                            [&] { return stopping_; })) {
    lock.unlock();
    (void)Reload();  // a failed load keeps the old version serving; retried next poll
    lock.lock();
  }
}

common::Status ModelHost::Reload() {
  std::lock_guard lock(reload_mu_);
  auto version = registry_.ProductionVersion(name_);
  if (!version.ok()) return version.status();
  if (*version == production_.load()->version) return Status::Ok();
  if (*version == 0) {
    production_.store(std::make_shared<const Served>());
    return Status::Ok();
  }
  auto manifest = registry_.Show(name_, *version);
  if (!manifest.ok()) return manifest.status();
  const char* variant = options_.b_version > 0 && options_.b_percent > 0 ? "/A" : "";
  auto model =
      LoadRecommender(registry_, *manifest, name_ + "@v" + std::to_string(*version) + variant);
  if (!model.ok()) return model.status();
  production_.store(std::make_shared<const Served>(Served{*version, std::move(*model)}));
  return Status::Ok();
}

int64_t ModelHost::version() const { return production_.load()->version; }

uint32_t ModelHost::Bucket(std::string_view user) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : user) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h % 100);
}

m::RecommenderOutput ModelHost::Recommend(std::string_view tenant, std::string_view user,
                                          std::span<const std::string> items, size_t n) const {
  // One snapshot per call: a swap during the call does not mix versions.
  std::shared_ptr<const Served> served;
  if (b_ && Bucket(user) < options_.b_percent) {
    served = b_;
  } else {
    served = production_.load();
  }
  if (!served->model) return {};
  return served->model->Recommend(tenant, user, items, n);
}

std::vector<m::RecommenderOutput> ModelHost::RecommendBatch(
    std::span<const m::RecommendRequest> requests) const {
  std::vector<m::RecommenderOutput> out(requests.size());
  // A and B users go to their version in one batch each; one snapshot per version per call.
  const std::shared_ptr<const Served> served[2] = {production_.load(), b_};
  std::vector<m::RecommendRequest> groups[2];
  std::vector<size_t> where[2];
  for (size_t i = 0; i < requests.size(); ++i) {
    const int g = b_ && Bucket(requests[i].user) < options_.b_percent ? 1 : 0;
    groups[g].push_back(requests[i]);
    where[g].push_back(i);
  }
  for (int g = 0; g < 2; ++g) {
    if (groups[g].empty() || !served[g] || !served[g]->model) continue;
    auto answers = served[g]->model->RecommendBatch(groups[g]);
    for (size_t r = 0; r < answers.size() && r < where[g].size(); ++r) {
      out[where[g][r]] = std::move(answers[r]);
    }
  }
  return out;
}

}  // namespace streamrec::registry
