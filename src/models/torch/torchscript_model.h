// A user's own TorchScript module (torch.jit.save) called through a fixed contract, so the
// registry can serve it like a trained model (docs/REGISTRY.md "TorchScript contract"):
//
//   forward(<the declared inputs, in the declared order>) -> Tensor[float32, N]
//     items:      Tensor[int64, L]  vocabulary indices (0-based line numbers), oldest first
//     timestamps: Tensor[int64, L]  event times in ms since the epoch, -1 when unknown
//     user_id:    str
//   the result: one score per vocabulary index (N = vocabulary size; [1, N] is accepted).
//
// LibTorch stays behind the pimpl: only torchscript_model.cc includes <torch/script.h>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace streamrec::models {

enum class ScriptInput { kItems, kTimestamps, kUserId };

class TorchscriptModel {
 public:
  //! Loads the module and checks the contract with one call on a dummy history (the first
  //! vocabulary index): kInvalidArgument ("invalid_torchscript", field "torchscript") when the
  //! file is not a TorchScript module, forward rejects the inputs or the output is not N
  //! floats. REQUIRES: n_items >= 1; `inputs` holds kItems.
  static common::Result<TorchscriptModel> Load(const std::string& path,
                                               std::vector<ScriptInput> inputs, int64_t n_items);

  //! The score of every vocabulary index (size n_items) after `items` (indices in
  //! 0..n_items-1, oldest first; REQUIRES: not empty) with their `timestamps_ms` (same size,
  //! or empty: all unknown). Safe to call from several threads at once.
  common::Result<std::vector<float>> Score(std::string_view user, std::span<const int64_t> items,
                                           std::span<const int64_t> timestamps_ms = {}) const;

  //! The k best (index, score) pairs, best first, history indices left out when mask_history;
  //! NaN scores are skipped. Empty on a failed call (callers fall back).
  std::vector<std::pair<int64_t, float>> TopK(std::string_view user, std::span<const int64_t> items,
                                              std::span<const int64_t> timestamps_ms, size_t k,
                                              bool mask_history) const;

  int64_t n_items() const;

  TorchscriptModel(TorchscriptModel&&) noexcept;
  TorchscriptModel& operator=(TorchscriptModel&&) noexcept;
  ~TorchscriptModel();

 private:
  struct Impl;
  explicit TorchscriptModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace streamrec::models
