#include "registry/model_host.h"

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#ifdef STREAMREC_HAVE_TORCH
#include "models/torch/sasrec.h"
#endif

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
  KnnRecommender(std::unique_ptr<m::SessionKnn> knn, std::string label)
      : knn_(std::move(knn)), label_(std::move(label)) {}
  m::RecommenderOutput Recommend(std::string_view, std::string_view,
                                 std::span<const std::string> items, size_t n) const override {
    // The window's own items are left out, as the co-visitation list does.
    return {knn_->Recommend(items, n, items), label_};
  }

 private:
  std::unique_ptr<m::SessionKnn> knn_;
  std::string label_;
};

#ifdef STREAMREC_HAVE_TORCH
class SasrecRecommender final : public m::Recommender {
 public:
  SasrecRecommender(m::SasrecModel model, std::vector<std::string> vocab, std::string label)
      : model_(std::move(model)), vocab_(std::move(vocab)), label_(std::move(label)) {
    for (size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<int32_t>(i + 1));
  }
  m::RecommenderOutput Recommend(std::string_view, std::string_view,
                                 std::span<const std::string> items, size_t n) const override {
    std::vector<int32_t> history;
    for (const auto& item : items) {
      if (auto it = ids_.find(item); it != ids_.end()) history.push_back(it->second);
    }
    m::RecommenderOutput out{{}, label_};
    if (history.empty()) return out;  // cold: only unknown items
    for (const auto& [id, score] : model_.TopK(history, n, /*mask_history=*/true)) {
      if (id >= 1 && static_cast<size_t>(id) <= vocab_.size()) {
        out.items.push_back({vocab_[id - 1], score});
      }
    }
    return out;
  }

 private:
  m::SasrecModel model_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  std::string label_;
};
#endif

}  // namespace

std::string KnnOptionsJson(const m::SessionKnnOptions& o) {
  json::object out{{"kind", o.kind == m::SessionKnnOptions::Kind::kSknn ? "sknn" : "vsknn"},
                   {"k", o.k},
                   {"sample_size", o.sample_size},
                   {"idf_weighting", o.idf_weighting},
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
  if (const auto* e = obj->if_contains("kind"); e && e->is_string()) {
    o.kind = e->get_string() == "sknn" ? m::SessionKnnOptions::Kind::kSknn
                                       : m::SessionKnnOptions::Kind::kVsknn;
  }
  return o;
}

Result<std::shared_ptr<const m::Recommender>> LoadRecommender(const Registry& registry,
                                                              const Manifest& manifest,
                                                              std::string label) {
  const fs::path dir = registry.VersionDir(manifest.name, manifest.version);
  switch (manifest.type) {
    case ModelType::kVsknn:
    case ModelType::kSknn: {
      auto options = KnnOptionsFromJson(manifest.options_json);
      options.kind = manifest.type == ModelType::kSknn ? m::SessionKnnOptions::Kind::kSknn
                                                       : m::SessionKnnOptions::Kind::kVsknn;
      auto knn = std::make_unique<m::SessionKnn>(options);
      if (auto s = knn->Load((dir / "knn.bin").string()); !s.ok()) return s;
      return std::shared_ptr<const m::Recommender>(
          std::make_shared<KnnRecommender>(std::move(knn), std::move(label)));
    }
    case ModelType::kSasrec: {
#ifdef STREAMREC_HAVE_TORCH
      auto model = m::SasrecModel::Load((dir / "model.pt").string());
      if (!model.ok()) return model.status();
      std::ifstream in(dir / (manifest.vocabulary.empty() ? "vocab.txt" : manifest.vocabulary));
      if (!in) return Status::Internal("cannot read the vocabulary of " + label);
      std::vector<std::string> vocab;
      for (std::string line; std::getline(in, line);) vocab.push_back(line);
      return std::shared_ptr<const m::Recommender>(std::make_shared<SasrecRecommender>(
          std::move(*model), std::move(vocab), std::move(label)));
#else
      return Status::Make(Code::kUnavailable, "no_torch",
                          "built without LibTorch: cannot serve " + label);
#endif
    }
    default:
      return Status::Invalid("not_servable",
                             std::string(ModelTypeName(manifest.type)) +
                                 " models are not served by ModelHost: " + label,
                             "type");
  }
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

}  // namespace streamrec::registry
