// Internal to train.cc / train_sasrec.cc. SASRec training lives in its own file because
// models/torch/sequence_data.h and models/eval.h both declare models::ReadUserSequences.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "registry/train.h"

namespace streamrec::registry::internal {

std::string Num(double v);
//! Registers and returns the stored manifest.
common::Result<TrainOutcome> Finish(Registry& registry, Manifest manifest,
                                    std::vector<Artifact> artifacts);
//! SASRec or its SLi-Rec-style variant, as manifest.type says. kUnavailable when built
//! without LibTorch.
common::Result<TrainOutcome> TrainSasrec(Registry& registry, const TrainRequest& request,
                                         const std::string& path, Manifest manifest);

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
