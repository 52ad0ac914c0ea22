// SASRec-family self-attentive sequential recommender (Kang & McAuley 2018) trained with
// full-softmax cross-entropy over all items at every position (Klenitskiy & Vasilev 2023,
// "SASRec with CE"), in LibTorch, and its long/short-term variant in the spirit of SLi-Rec
// (Yu et al. 2019): time gaps as input, an attention-pooled long-term representation and a
// learned gate (docs/SASREC.md). LibTorch stays behind the pimpl: this header does not
// include it, so only sasrec.cc pays its compile time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "models/torch/sequence_data.h"

namespace streamrec::models {

//! kSlirec adds to the SASRec encoder (the short-term state h_s, over the last `short_len`
//! positions) an embedding of the log time gap to the previous event at each position, a
//! long-term state h_l (attention pooling, query h_s, over the embeddings of every item up to
//! the position) and a gate sigmoid(W[h_s; h_l; gap]) mixing the two.
enum class SequenceArch { kSasrec, kSlirec };

struct SasrecOptions {
  SequenceArch arch = SequenceArch::kSasrec;
  int64_t max_len = 50;       //!< most recent items fed to the model
  int64_t hidden = 64;        //!< embedding and model width
  int64_t layers = 2;         //!< pre-LN transformer blocks
  int64_t heads = 1;          //!< must divide hidden
  double dropout = 0.2;       //!< embeddings, attention weights, residual branches
  double lr = 1e-3;           //!< AdamW
  double weight_decay = 0.0;  //!< AdamW decoupled weight decay
  int64_t batch = 256;        //!< users per step
  int64_t epochs = 200;       //!< upper bound; see patience
  //! Early stop after this many epochs without a better validation NDCG@10; the best
  //! epoch's weights are kept. <= 0: no validation hold-out, train all `epochs` on all items.
  int64_t patience = 10;
  uint64_t seed = 42;  //!< torch::manual_seed and batch shuffling
  int threads = 2;     //!< torch intra-op threads while training
  //! Stop after the first epoch that ends past this many seconds (0: no limit); the best
  //! validation epoch so far is kept.
  double max_seconds = 0;
  //! kSlirec: positions the short-term encoder attends to (0: all max_len).
  int64_t short_len = 0;
  //! kSlirec: time-gap buckets (GapBucket); bucket 0 = unknown.
  int64_t time_buckets = 32;
  //! Validation ranks with the history's items masked (leave-one-out protocol); false for
  //! the session protocol, where the next item is often one already seen. Not saved.
  bool mask_validation_history = true;
  //! With patience > 0: 0 holds out the last item of every sequence (leave-one-out); N > 1
  //! holds out every N-th sequence whole (spread over the whole time range, so the newest
  //! sessions still train), each of its prefixes predicting its next item, and trains on every
  //! item of the others (the session protocol). Not saved.
  int64_t holdout_every = 0;
};

//! "sasrec" | "slirec".
const char* SequenceArchName(SequenceArch arch);

//! Event times (unix seconds) parallel to the item histories: empty, or one vector per
//! history; an empty or mis-sized vector means "unknown" (gap bucket 0) for that history.
//! Only kSlirec reads them.
using SequenceTimes = std::span<const std::vector<int64_t>>;

//! One training epoch, reported to the progress callback.
struct SasrecEpoch {
  int64_t epoch = 0;   //!< 1-based
  double loss = 0;     //!< mean cross-entropy per target position
  LooMetrics val;      //!< validation metrics (users == 0 without a hold-out)
  double seconds = 0;  //!< training + validation time of this epoch
};
using SasrecProgress = std::function<void(const SasrecEpoch&)>;
//! Within an epoch (1-based): `done` of `total` training sequences, about every 1%.
using SasrecStepProgress = std::function<void(int64_t epoch, size_t done, size_t total)>;

//! What Train did, kept with the model (and in the saved file).
struct SasrecTrainInfo {
  int64_t epochs_run = 0;
  int64_t best_epoch = 0;
  double seconds = 0;
  LooMetrics best_val;
  std::vector<SasrecEpoch> curve;  //!< not saved
};

//! A trained model. Inference (TopK, ScoreBatch, Evaluate) is const and may run from
//! several threads at once. Movable, not copyable.
class SasrecModel {
 public:
  //! `train_seqs`: one sequence per user, item ids 1..n_items, oldest first, the test item
  //! already removed. With options.patience > 0 the last item of every sequence with >= 3
  //! items is held out as that user's validation target (history masked, full ranking) and
  //! the rest is trained on (or see options.holdout_every); the weights of the best
  //! validation NDCG@10 epoch are kept.
  //! Training uses every position of each sequence (its last max_len + 1 items).
  //! `train_times`: see SequenceTimes.
  static common::Result<SasrecModel> Train(const std::vector<std::vector<int32_t>>& train_seqs,
                                           int32_t n_items, const SasrecOptions& options,
                                           const SasrecProgress& progress = {},
                                           SequenceTimes train_times = {},
                                           const SasrecStepProgress& steps = {});

  //! One file with the options, item count and weights. The directory must exist.
  common::Status Save(const std::string& path) const;
  static common::Result<SasrecModel> Load(const std::string& path);

  //! Single-user inference from the last position: the k best items (score = logit), best
  //! first. Ids outside 1..n_items in `history` are ignored; an empty history gives {}.
  //! `times`: the history's event times (unix seconds), or empty.
  std::vector<std::pair<int32_t, float>> TopK(std::span<const int32_t> history, size_t k,
                                              bool mask_history,
                                              std::span<const int64_t> times = {}) const;

  //! TopK for many users in one pass (blocks of up to 512), one list per history, in order; the
  //! answer for each is TopK's up to float rounding.
  std::vector<std::vector<std::pair<int32_t, float>>> TopKBatch(
      std::span<const std::vector<int32_t>> histories, size_t k, bool mask_history,
      SequenceTimes times = {}) const;

  //! Scores of every item id 0..n_items (0 is padding, -inf) for each history, row-major
  //! into `scores` (resized to histories.size() * (n_items + 1)).
  common::Status ScoreBatch(std::span<const std::vector<int32_t>> histories,
                            std::vector<float>* scores, SequenceTimes times = {}) const;

  //! Full-ranking leave-one-out metrics of `targets[u]` after `histories[u]`; with
  //! mask_history the history items other than the target are excluded from the ranking.
  common::Result<LooMetrics> Evaluate(std::span<const std::vector<int32_t>> histories,
                                      std::span<const int32_t> targets, bool mask_history = true,
                                      SequenceTimes times = {}) const;

  int32_t n_items() const;
  const SasrecOptions& options() const;
  const SasrecTrainInfo& train_info() const;

  SasrecModel(SasrecModel&&) noexcept;
  SasrecModel& operator=(SasrecModel&&) noexcept;
  ~SasrecModel();

 private:
  struct Impl;
  explicit SasrecModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

//! Sets LibTorch's process-wide intra-op thread count (inference is fastest with 1 here).
void SetTorchThreads(int threads);

//! For training tools, once at start (process-wide malloc settings, glibc's or, when the binary
//! links it, jemalloc's): freed score blocks stay in the heap for the next step, instead of the
//! allocator giving them back to the kernel and page-faulting them in again at every step (about
//! half of an epoch's time at 43k items). Under glibc, score blocks are kept under the mmap
//! threshold set here; under jemalloc, freed pages are never purged.
void KeepFreedBlocksForReuse();

//! The `model.pt` format version written by Save (Load also reads version 1, SASRec only).
inline constexpr int kSasrecFormatVersion = 2;

}  // namespace streamrec::models
