// Internal to train.cc / train_sasrec.cc. SASRec training lives in its own file so that only
// it depends on the LibTorch model.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "models/eval.h"
#include "registry/train.h"

namespace streamrec::registry::internal {

std::string Num(double v);
//! Registers and returns the stored manifest.
common::Result<TrainOutcome> Finish(Registry& registry, Manifest manifest,
                                    std::vector<Artifact> artifacts);
//! `{"protocol": ..., "split": ..., "cases": N, "HR@k": ..., "MRR@k": ..., "NDCG@k": ...,
//! "train_seconds": ..., "eval_seconds": ...}`.
std::string MetricsJson(const models::MultiKEvaluator& e, const std::string& protocol,
                        const std::string& split, double train_s, double eval_s);
//! SASRec or its SLi-Rec-style variant, as manifest.type says, on `user item item ...` lines
//! (or a RecBole .inter file), tested leave-one-out. kUnavailable when built without LibTorch.
common::Result<TrainOutcome> TrainSasrec(Registry& registry, const TrainRequest& request,
                                         const std::string& path, Manifest manifest);
//! The same on sessions (one per line), tested with the session protocol on `cases`: every
//! prefix predicts its next item over all items, prefix items not masked. Validation holds
//! out the last item of each training session.
common::Result<TrainOutcome> TrainSasrecOnSessions(Registry& registry, const TrainRequest& request,
                                                   std::vector<std::vector<std::string>> sessions,
                                                   std::span<const models::NextItemCase> cases,
                                                   Manifest manifest);

//! A scratch folder for artifacts before Register copies them in; removed on every path.
struct ScratchDir {
  ScratchDir() {
    path = (std::filesystem::temp_directory_path() /
            ("streamrec-train-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
               .string();
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string path;
};

}  // namespace streamrec::registry::internal
