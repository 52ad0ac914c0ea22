// Serving registered models online: loaders that turn a registry version into a
// models::Recommender, and ModelHost, which serves a name's production version, hot-swaps it when
// the production pointer moves (Promote/Rollback) and can split users A/B between the production
// version and a fixed second one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "models/blend.h"
#include "models/session_knn.h"
#include "registry/recommender.h"
#include "registry/registry.h"

namespace streamrec::registry {

//! SessionKnnOptions as the manifest's training_options, and back (unknown keys are ignored,
//! missing ones keep their defaults).
std::string KnnOptionsJson(const models::SessionKnnOptions& options);
models::SessionKnnOptions KnnOptionsFromJson(std::string_view json);

//! A blend's member: a registered version and its relative weight (0: equal shares).
struct BlendMember {
  std::string name;
  int64_t version = 0;
  double weight = 0;
};
//! A blend's training_options (`{"members": [{"name", "version"[, "weight"]}, ...],
//! "rerank": bool}`), and back. Weights are all given (> 0) or none.
common::Result<std::vector<BlendMember>> BlendMembersFromJson(std::string_view json);
std::string BlendOptionsJson(std::span<const BlendMember> members, bool rerank = false);
//! Whether a blend's options say it has a re-ranker (artifact kRerankArtifact).
bool BlendHasReranker(std::string_view json);
inline constexpr char kRerankArtifact[] = "rerank.json";

//! Loads a version (vsknn, sknn, blend; sasrec, slirec and torchscript when built with LibTorch)
//! as a Recommender whose `model` label is `label`; a blend loads its member versions.
//! kInvalidArgument for covis (the pipeline's live co-visitation model is the online one).
//! Served lists leave the window's own items out; `keep_window_items` keeps them, for the
//! offline session protocol (the next click is often an item already seen).
common::Result<std::shared_ptr<const models::Recommender>> LoadRecommender(
    const Registry& registry, const Manifest& manifest, std::string label,
    bool keep_window_items = false);

//! A blend from its options (BlendOptionsJson) as LoadRecommender serves a registered one, with
//! the re-ranker saved at `rerank_path` (empty: none); before the blend is registered.
common::Result<std::shared_ptr<const models::Recommender>> LoadBlendRecommender(
    const Registry& registry, std::string_view options_json, std::string label,
    bool keep_window_items, const std::string& rerank_path);

//! The session-kNN kind of a registered type (kSknn for sknn, else kVsknn).
models::SessionKnnOptions::Kind KnnKindOf(ModelType type);

//! A fitted session-kNN as LoadRecommender serves a registered one.
std::shared_ptr<const models::Recommender> MakeKnnRecommender(
    std::unique_ptr<models::SessionKnn> knn, std::string label, bool keep_window_items);

//! How a blend reads a member's scores: votes for session-kNN, logits for the others.
models::ScoreScale BlendScaleOf(ModelType type);

//! The TorchScript contract (docs/REGISTRY.md): `inputs` may name only "items"
//! (list<string>, required), "timestamps" (list<int64>) and "user_id" (string), each once, and,
//! when built with LibTorch, the module at `module_path` must load and return one score per
//! vocabulary line for a one-item history. kInvalidArgument naming the field otherwise.
common::Status CheckTorchscript(const std::string& module_path, const std::vector<Field>& inputs,
                                size_t vocabulary_size);

struct ModelHostOptions {
  //! How often the production pointer is polled; 0: never (call Reload()).
  int64_t poll_ms = 3000;
  //! A/B: users whose stable bucket (0..99) is below b_percent get version b_version ("B"), the
  //! rest the production version ("A"). b_version 0: no split.
  int64_t b_version = 0;
  uint32_t b_percent = 0;
};

class ModelHost final : public models::Recommender {
 public:
  //! Loads the production version of `name` (none yet is fine: Recommend answers nothing and the
  //! caller falls back until one is promoted) and the B version, then starts polling.
  static common::Result<std::shared_ptr<ModelHost>> Open(Registry registry, std::string name,
                                                         ModelHostOptions options = {});
  ~ModelHost() override;
  ModelHost(const ModelHost&) = delete;
  ModelHost& operator=(const ModelHost&) = delete;

  //! Loads the production version if it is not the one served and swaps it in atomically:
  //! calls in flight finish on the old one. On error the old one keeps serving.
  common::Status Reload();
  //! The production version served now (0: none).
  int64_t version() const;

  models::RecommenderOutput Recommend(std::string_view tenant, std::string_view user,
                                      std::span<const std::string> items, size_t n) const override;
  //! The same answers as Recommend, each served version asked once for all its users.
  std::vector<models::RecommenderOutput> RecommendBatch(
      std::span<const models::RecommendRequest> requests) const override;

  //! Stable bucket 0..99 of a user id (FNV-1a; the same in every process and build).
  static uint32_t Bucket(std::string_view user);

 private:
  struct Served {
    int64_t version = 0;
    std::shared_ptr<const models::Recommender> model;
  };
  ModelHost(Registry registry, std::string name, ModelHostOptions options);
  void PollLoop();

  Registry registry_;
  const std::string name_;
  const ModelHostOptions options_;
  std::atomic<std::shared_ptr<const Served>> production_;
  std::shared_ptr<const Served> b_;  // fixed after Open
  std::mutex reload_mu_;             // one Reload at a time

  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;
  std::thread poller_;
};

}  // namespace streamrec::registry
