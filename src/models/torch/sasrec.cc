#include "models/torch/sasrec.h"

#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>

// jemalloc's control call, present when the binary links jemalloc (streamrec does); declared weak
// so that this library also runs on glibc's malloc alone.
extern "C" int mallctl(const char* name, void* old_value, size_t* old_size, void* new_value,
                       size_t new_size) __attribute__((weak));

namespace streamrec::models {
namespace {

using common::Result;
using common::Status;

constexpr int64_t kFormatVersion = kSasrecFormatVersion;
constexpr size_t kEvalBatch = 512;
// Item-score rows computed at once. A block stays under glibc's largest mmap threshold (32 MB),
// so it is reused from the heap rather than mapped and page-faulted afresh at every step:
// at 43k items that was more than half of a training epoch (sys time).
constexpr size_t kScoreBlockBytes = 24 << 20;

size_t ScoreRows(int32_t n_items) {
  return std::clamp<size_t>(kScoreBlockBytes / (sizeof(float) * (size_t(n_items) + 1)), 1,
                            kEvalBatch);
}
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Users scored by matrix-vector products rather than one matrix product: sgemm repacks all
// item weights (11 MB at 43k items) on every call, which was most of a single user's latency.
constexpr int64_t kVectorProductRows = 4;

// The k best finite scores of a row (position = item id) into `best`, best first, ties to the
// lower id: one pass keeping a heap of the k best, which beats torch::topk's copy and select
// of the whole row for the few items served.
void BestOfRow(const float* row, int32_t size, size_t k,
               std::vector<std::pair<int32_t, float>>& best) {
  const auto better = [](const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  best.clear();
  float floor = kNegInf;  // a score must beat it: -inf, then the k-th best once k are kept
  for (int32_t id = 0; id < size; ++id) {
    const float score = row[id];
    if (!(score > floor)) continue;  // also skips NaN
    if (best.size() == k) {
      std::pop_heap(best.begin(), best.end(), better);
      best.back() = {id, score};
    } else {
      best.emplace_back(id, score);
    }
    std::push_heap(best.begin(), best.end(), better);
    if (best.size() == k) floor = best.front().second;
  }
  std::sort(best.begin(), best.end(), better);
}

// The last positions' states [B, H] against every item's weights [n_items + 1, H]: scores
// [B, n_items + 1], contiguous.
torch::Tensor ItemScores(const torch::Tensor& weights, const torch::Tensor& states) {
  const int64_t rows = states.size(0);
  if (rows > kVectorProductRows) return states.matmul(weights.t()).contiguous();
  auto scores = torch::empty({rows, weights.size(0)}, weights.options());
  for (int64_t i = 0; i < rows; ++i) {
    auto row = scores.select(0, i);
    torch::mv_out(row, weights, states.select(0, i));
  }
  return scores;
}

// Pre-LN transformer block: x + Attn(LN(x)), then x + FFN(LN(x)).
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t hidden, int64_t heads, double dropout)
      : heads_(heads),
        dropout_(dropout),
        ln1_(register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})))),
        qkv_(register_module("qkv", torch::nn::Linear(hidden, 3 * hidden))),
        out_(register_module("out", torch::nn::Linear(hidden, hidden))),
        ln2_(register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})))),
        fc1_(register_module("fc1", torch::nn::Linear(hidden, hidden))),
        fc2_(register_module("fc2", torch::nn::Linear(hidden, hidden))) {}

  // x [B, L, H]; blocked [B, 1, L, L], true where query i may not attend to key j.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& blocked) {
    const int64_t b = x.size(0), l = x.size(1), h = x.size(2), d = h / heads_;
    const bool train = is_training();
    auto qkv = qkv_->forward(ln1_->forward(x)).view({b, l, 3, heads_, d}).permute({2, 0, 3, 1, 4});
    auto scores = torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(double(d));
    scores = scores.masked_fill(blocked, kNegInf);
    auto attn = torch::dropout(torch::softmax(scores, -1), dropout_, train);
    auto a = torch::matmul(attn, qkv[2]).transpose(1, 2).reshape({b, l, h});
    auto y = x + torch::dropout(out_->forward(a), dropout_, train);
    auto f = torch::dropout(torch::gelu(fc1_->forward(ln2_->forward(y))), dropout_, train);
    return y + torch::dropout(fc2_->forward(f), dropout_, train);
  }

 private:
  int64_t heads_;
  double dropout_;
  torch::nn::LayerNorm ln1_;
  torch::nn::Linear qkv_, out_;
  torch::nn::LayerNorm ln2_;
  torch::nn::Linear fc1_, fc2_;
};
TORCH_MODULE(Block);

class NetImpl : public torch::nn::Module {
 public:
  NetImpl(int64_t n_items, const SasrecOptions& o)
      : max_len_(o.max_len),
        hidden_(o.hidden),
        short_len_(o.arch == SequenceArch::kSlirec ? o.short_len : 0),
        dropout_(o.dropout),
        item_emb_(register_module(
            "item_emb", torch::nn::Embedding(
                            torch::nn::EmbeddingOptions(n_items + 1, o.hidden).padding_idx(0)))),
        pos_emb_(register_module("pos_emb", torch::nn::Embedding(o.max_len, o.hidden))),
        final_ln_(register_module("final_ln",
                                  torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden})))) {
    for (int64_t i = 0; i < o.layers; ++i) {
      blocks_.push_back(
          register_module("block" + std::to_string(i), Block(o.hidden, o.heads, o.dropout)));
    }
    if (o.arch == SequenceArch::kSlirec) {
      using torch::nn::Linear;
      gap_emb_ = register_module(
          "gap_emb", torch::nn::Embedding(
                         torch::nn::EmbeddingOptions(o.time_buckets, o.hidden).padding_idx(0)));
      pool_query_ = register_module("pool_query", Linear(o.hidden, o.hidden));
      long_out_ = register_module("long_out", Linear(o.hidden, o.hidden));
      long_ln_ =
          register_module("long_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden})));
      gate_ = register_module("gate", Linear(3 * o.hidden, o.hidden));
    }
    torch::NoGradGuard no_grad;
    item_emb_->weight.normal_(0, 0.02);
    item_emb_->weight[0].zero_();
    pos_emb_->weight.normal_(0, 0.02);
    if (gap_emb_) {
      gap_emb_->weight.normal_(0, 0.02);
      gap_emb_->weight[0].zero_();
    }
  }

  // seq [B, L] item ids, left-padded with 0, L <= max_len -> [B, L, H]. The last column is
  // always the most recent position (max_len - 1), whatever L is. gaps [B, L]: GapBucket of
  // each position (kSlirec only; undefined otherwise).
  torch::Tensor Encode(const torch::Tensor& seq, const torch::Tensor& gaps) {
    const int64_t b = seq.size(0), l = seq.size(1);
    const bool train = is_training();
    const double scale = std::sqrt(double(hidden_));
    auto positions = torch::arange(max_len_ - l, max_len_, torch::kLong);
    auto items = item_emb_->forward(seq) * scale;
    auto x = items + pos_emb_->forward(positions).unsqueeze(0);
    torch::Tensor gap;
    if (gap_emb_) {
      gap = gap_emb_->forward(gaps);
      x = x + gap;
    }
    auto keep = (seq != 0).unsqueeze(-1).to(x.scalar_type());
    x = torch::dropout(x, dropout_, train) * keep;
    // Future and padding keys are blocked; the diagonal never is, so padding rows stay finite.
    auto future = torch::ones({l, l}, torch::kBool).triu(1).view({1, 1, l, l});
    auto pad_key = (seq == 0).view({b, 1, 1, l});
    auto not_diag = torch::eye(l, torch::kBool).view({1, 1, l, l}).logical_not();
    auto causal = torch::logical_and(torch::logical_or(future, pad_key), not_diag);
    auto blocked = causal;
    if (short_len_ > 0 && short_len_ < l) {
      // The short-term encoder sees only the last short_len positions up to each query.
      auto old = torch::ones({l, l}, torch::kBool).tril(-short_len_).view({1, 1, l, l});
      blocked = torch::logical_or(blocked, old);
    }
    for (auto& block : blocks_) x = block->forward(x, blocked) * keep;
    x = final_ln_->forward(x);
    if (!gap_emb_) return x;
    // Long-term state: attention pooling, queried by the short-term state, over the item
    // embeddings of every position up to this one (causal, padding excluded).
    auto scores = pool_query_->forward(x).matmul(items.transpose(1, 2)) / scale;
    scores = scores.masked_fill(causal.squeeze(1), kNegInf);
    auto attn = torch::dropout(torch::softmax(scores, -1), dropout_, train);
    auto h_long = long_ln_->forward(long_out_->forward(attn.matmul(items)));
    auto g = torch::sigmoid(gate_->forward(torch::cat({x, h_long, gap}, -1)));
    return g * x + (1 - g) * h_long;
  }

  // [n_items + 1, H]; row 0 is padding.
  const torch::Tensor& ItemWeights() const { return item_emb_->weight; }

 private:
  int64_t max_len_, hidden_, short_len_;
  double dropout_;
  torch::nn::Embedding item_emb_, pos_emb_;
  torch::nn::LayerNorm final_ln_;
  std::vector<Block> blocks_;
  // kSlirec only (null for kSasrec, so SASRec archives keep their parameter names).
  torch::nn::Embedding gap_emb_{nullptr};
  torch::nn::Linear pool_query_{nullptr}, long_out_{nullptr};
  torch::nn::LayerNorm long_ln_{nullptr};
  torch::nn::Linear gate_{nullptr};
};
TORCH_MODULE(Net);

Status ValidateOptions(const SasrecOptions& o, int32_t n_items) {
  if (n_items <= 0) return Status::Invalid("bad_option", "n_items must be > 0", "n_items");
  if (o.max_len < 1 || o.max_len > 4096) {
    return Status::Invalid("bad_option", "max_len must be in 1..4096", "max_len");
  }
  if (o.hidden < 1 || o.heads < 1 || o.hidden % o.heads != 0) {
    return Status::Invalid("bad_option", "hidden must be a positive multiple of heads", "hidden");
  }
  if (o.layers < 0) return Status::Invalid("bad_option", "layers must be >= 0", "layers");
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    return Status::Invalid("bad_option", "dropout must be in [0, 1)", "dropout");
  }
  if (!(o.lr > 0)) return Status::Invalid("bad_option", "lr must be > 0", "lr");
  if (!(o.weight_decay >= 0)) {
    return Status::Invalid("bad_option", "weight_decay must be >= 0", "weight_decay");
  }
  if (o.batch < 1) return Status::Invalid("bad_option", "batch must be >= 1", "batch");
  if (o.epochs < 1) return Status::Invalid("bad_option", "epochs must be >= 1", "epochs");
  if (o.threads < 1) return Status::Invalid("bad_option", "threads must be >= 1", "threads");
  if (!(o.max_seconds >= 0)) {
    return Status::Invalid("bad_option", "max_seconds must be >= 0", "max_seconds");
  }
  if (o.short_len < 0) return Status::Invalid("bad_option", "short_len must be >= 0", "short_len");
  if (o.holdout_every < 0 || o.holdout_every == 1) {
    return Status::Invalid("bad_option", "holdout_every must be 0 or >= 2", "holdout_every");
  }
  if (o.arch == SequenceArch::kSlirec && (o.time_buckets < 2 || o.time_buckets > 64)) {
    return Status::Invalid("bad_option", "time_buckets must be in 2..64", "time_buckets");
  }
  return Status::Ok();
}

// The times of histories[start...] (Build reads them by index; empty when there are none).
SequenceTimes TimesFrom(SequenceTimes times, size_t start) {
  return times.size() > start ? times.subspan(start) : SequenceTimes{};
}

// Gap buckets only matter to kSlirec; 0 means "build no gap tensor".
int64_t GapBuckets(const SasrecOptions& o) {
  return o.arch == SequenceArch::kSlirec ? o.time_buckets : 0;
}

struct Inputs {
  torch::Tensor seq;   // [B, L] item ids, left-padded with 0
  torch::Tensor gaps;  // [B, L] gap buckets; undefined without time buckets
};

// Left-padded model input from the last max_len valid ids of each history. A gap is taken
// between consecutive valid items, so an ignored id does not open a fake gap.
Inputs BuildInputs(std::span<const std::vector<int32_t>> histories, SequenceTimes times,
                   int64_t max_len, int32_t n_items, int64_t time_buckets) {
  std::vector<std::vector<int64_t>> rows(histories.size()), gap_rows(histories.size());
  int64_t width = 1;
  for (size_t i = 0; i < histories.size(); ++i) {
    const auto& h = histories[i];
    const bool timed = i < times.size() && times[i].size() == h.size();
    auto& row = rows[i];
    auto& gap_row = gap_rows[i];
    int64_t prev = -1;
    for (size_t j = 0; j < h.size(); ++j) {
      if (h[j] <= 0 || h[j] > n_items) continue;
      row.push_back(h[j]);
      if (time_buckets > 0) {
        gap_row.push_back(timed && prev >= 0 ? GapBucket(times[i][j] - times[i][prev],
                                                         static_cast<int32_t>(time_buckets))
                                             : 0);
      }
      prev = static_cast<int64_t>(j);
    }
    width = std::max<int64_t>(width, std::min<int64_t>(row.size(), max_len));
  }
  Inputs out;
  out.seq = torch::zeros({int64_t(histories.size()), width}, torch::kLong);
  if (time_buckets > 0) out.gaps = torch::zeros({int64_t(histories.size()), width}, torch::kLong);
  auto fill = [&](const std::vector<std::vector<int64_t>>& from, torch::Tensor& to) {
    auto* data = to.data_ptr<int64_t>();
    for (size_t i = 0; i < from.size(); ++i) {
      const size_t n = std::min<size_t>(from[i].size(), width);
      std::copy(from[i].end() - n, from[i].end(), data + (i + 1) * width - n);
    }
  };
  fill(rows, out.seq);
  if (time_buckets > 0) fill(gap_rows, out.gaps);
  return out;
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Restores the global intra-op thread count on scope exit.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : saved_(torch::get_num_threads()) {
    torch::set_num_threads(threads);
  }
  ~ThreadScope() { torch::set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

void SetTorchThreads(int threads) { torch::set_num_threads(std::max(1, threads)); }

void KeepFreedBlocksForReuse() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
#endif
  if (mallctl == nullptr) return;
  // jemalloc gives freed pages back to the kernel gradually (10 s decay), and the next step's
  // tensors fault them in again: `streamrec train --model sasrec` ran 1.45x slower (twice the
  // system time). Never purging keeps them, as the glibc settings above do for glibc.
  ssize_t never = -1;
  for (const char* name : {"arenas.dirty_decay_ms", "arenas.muzzy_decay_ms"}) {
    mallctl(name, nullptr, nullptr, &never, sizeof never);  // arenas made from now on
  }
  unsigned arenas = 0;
  size_t size = sizeof arenas;
  if (mallctl("arenas.narenas", &arenas, &size, nullptr, 0) != 0) return;
  for (unsigned i = 0; i < arenas; ++i) {  // and those that exist already
    for (const char* decay : {"dirty_decay_ms", "muzzy_decay_ms"}) {
      const std::string name = "arena." + std::to_string(i) + "." + decay;
      mallctl(name.c_str(), nullptr, nullptr, &never, sizeof never);
    }
  }
}

const char* SequenceArchName(SequenceArch arch) {
  return arch == SequenceArch::kSlirec ? "slirec" : "sasrec";
}

struct SasrecModel::Impl {
  SasrecOptions options;
  int32_t n_items = 0;
  SasrecTrainInfo info;
  mutable Net net{nullptr};

  Inputs Build(std::span<const std::vector<int32_t>> histories, SequenceTimes times) const {
    return BuildInputs(histories, times, options.max_len, n_items, GapBuckets(options));
  }

  // Scores every item for each history, ScoreRows users at a time: `on_block(start, batch,
  // inputs, scores)` gets the block's histories[start..], their model inputs and the scores
  // [batch, n_items + 1] from the last position, contiguous, padding id 0 at -inf.
  template <typename OnBlock>
  void ForEachScoreBlock(std::span<const std::vector<int32_t>> histories, SequenceTimes times,
                         OnBlock&& on_block) const {
    const size_t rows = ScoreRows(n_items);
    for (size_t start = 0; start < histories.size(); start += rows) {
      const size_t end = std::min(histories.size(), start + rows);
      auto batch = histories.subspan(start, end - start);
      auto in = Build(batch, TimesFrom(times, start));
      auto hidden = net->Encode(in.seq, in.gaps).select(1, -1);  // [B, H]
      auto scores = ItemScores(net->ItemWeights(), hidden);
      scores.select(1, 0).fill_(kNegInf);
      on_block(start, batch, in, scores);
    }
  }

  LooMetrics EvaluateUnchecked(std::span<const std::vector<int32_t>> histories,
                               std::span<const int32_t> targets, bool mask_history,
                               SequenceTimes times) const {
    torch::NoGradGuard no_grad;
    LooMetrics metrics;
    ForEachScoreBlock(
        histories, times, [&](size_t start, auto batch, const Inputs& in, torch::Tensor& scores) {
          auto target = torch::empty({int64_t(batch.size()), 1}, torch::kLong);
          for (size_t i = 0; i < batch.size(); ++i) {
            target.data_ptr<int64_t>()[i] = std::clamp<int64_t>(targets[start + i], 0, n_items);
          }
          auto target_score = scores.gather(1, target).clone();
          if (mask_history) {
            size_t width = 1;
            for (const auto& h : batch) width = std::max(width, h.size());
            auto index = torch::zeros({int64_t(batch.size()), int64_t(width)}, torch::kLong);
            auto* data = index.data_ptr<int64_t>();
            for (size_t i = 0; i < batch.size(); ++i) {
              for (size_t j = 0; j < batch[i].size(); ++j) {
                const int32_t item = batch[i][j];
                data[i * width + j] = (item > 0 && item <= n_items) ? item : 0;
              }
            }
            scores.scatter_(1, index, kNegInf);
          }
          auto rank = (scores > target_score).sum(1).contiguous();
          const auto* r = rank.data_ptr<int64_t>();
          const auto last = in.seq.select(1, -1).contiguous();
          for (size_t i = 0; i < batch.size(); ++i) {
            // A user without a usable history or target cannot be ranked: counted as a miss.
            const bool usable = last.data_ptr<int64_t>()[i] != 0 && targets[start + i] > 0 &&
                                targets[start + i] <= n_items;
            metrics.Add(usable ? r[i] : std::numeric_limits<int32_t>::max());
          }
        });
    metrics.Finish();
    return metrics;
  }
};

SasrecModel::SasrecModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SasrecModel::SasrecModel(SasrecModel&&) noexcept = default;
SasrecModel& SasrecModel::operator=(SasrecModel&&) noexcept = default;
SasrecModel::~SasrecModel() = default;

int32_t SasrecModel::n_items() const { return impl_->n_items; }
const SasrecOptions& SasrecModel::options() const { return impl_->options; }
const SasrecTrainInfo& SasrecModel::train_info() const { return impl_->info; }

Result<SasrecModel> SasrecModel::Train(const std::vector<std::vector<int32_t>>& train_seqs,
                                       int32_t n_items, const SasrecOptions& options,
                                       const SasrecProgress& progress, SequenceTimes train_times,
                                       const SasrecStepProgress& steps) {
  if (Status s = ValidateOptions(options, n_items); !s.ok()) return s;
  for (const auto& seq : train_seqs) {
    for (int32_t item : seq) {
      if (item < 1 || item > n_items) {
        return Status::Invalid(
            "bad_item",
            "item id " + std::to_string(item) + " outside 1.." + std::to_string(n_items),
            "train_seqs");
      }
    }
  }
  const bool validate = options.patience > 0;
  const int64_t buckets = GapBuckets(options);
  // Training examples (the last max_len + 1 items of each sequence, as views into train_seqs
  // and their gap buckets) and validation cases.
  struct Example {
    const int32_t* items;
    const int32_t* gaps;  // null without time buckets
    int64_t size;
  };
  std::vector<std::vector<int32_t>> gap_buckets(buckets > 0 ? train_seqs.size() : 0);
  std::vector<Example> examples;
  std::vector<std::vector<int32_t>> val_histories;
  std::vector<std::vector<int64_t>> val_times;
  std::vector<int32_t> val_targets;
  // Whole sequences held out every `every`-th (0: the last item of each instead).
  const size_t every = options.holdout_every > 1 ? static_cast<size_t>(options.holdout_every) : 0;
  for (size_t u = 0; u < train_seqs.size(); ++u) {
    const auto& seq = train_seqs[u];
    const bool timed = u < train_times.size() && train_times[u].size() == seq.size();
    if (buckets > 0) {
      auto& g = gap_buckets[u];
      g.assign(seq.size(), 0);
      for (size_t j = 1; timed && j < seq.size(); ++j) {
        g[j] = GapBucket(train_times[u][j] - train_times[u][j - 1], int32_t(buckets));
      }
    }
    size_t n = seq.size();
    const auto hold_out = [&](size_t prefix) {
      val_histories.emplace_back(seq.begin(), seq.begin() + prefix);
      val_times.emplace_back();
      if (timed) val_times.back().assign(train_times[u].begin(), train_times[u].begin() + prefix);
      val_targets.push_back(seq[prefix]);
    };
    if (validate && every > 0 && u % every == every - 1) {
      for (size_t prefix = 1; prefix < n; ++prefix) hold_out(prefix);
      continue;
    }
    if (validate && every == 0 && n >= 3) hold_out(--n);
    if (n < 2) continue;
    const size_t first = n > size_t(options.max_len) + 1 ? n - options.max_len - 1 : 0;
    examples.push_back({seq.data() + first, buckets > 0 ? gap_buckets[u].data() + first : nullptr,
                        int64_t(n - first)});
  }
  if (examples.empty()) {
    return Status::Invalid("no_data", "no training sequence with at least 2 items", "train_seqs");
  }
  try {
    ThreadScope threads(options.threads);
    torch::manual_seed(options.seed);
    std::mt19937_64 rng(options.seed);
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->n_items = n_items;
    impl->net = Net(n_items, options);
    Net& net = impl->net;
    torch::optim::AdamW optimizer(
        net->parameters(),
        torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));

    std::map<std::string, torch::Tensor> best_state;
    double best_ndcg = -1;
    int64_t since_best = 0;
    const int64_t t0 = SteadyMs();
    std::vector<size_t> order(examples.size());
    const size_t report_every = std::max<size_t>(1, order.size() / 100);  // `steps`: ~1%
    std::iota(order.begin(), order.end(), 0);
    for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
      const int64_t e0 = SteadyMs();
      net->train();
      std::shuffle(order.begin(), order.end(), rng);
      double loss_sum = 0;
      int64_t loss_count = 0;
      for (size_t start = 0; start < order.size(); start += options.batch) {
        const size_t end = std::min(order.size(), start + size_t(options.batch));
        int64_t width = 1;
        for (size_t i = start; i < end; ++i) {
          width = std::max<int64_t>(width, examples[order[i]].size - 1);
        }
        const int64_t b = end - start;
        auto inputs = torch::zeros({b, width}, torch::kLong);
        auto targets = torch::zeros({b, width}, torch::kLong);
        torch::Tensor gaps;
        if (buckets > 0) gaps = torch::zeros({b, width}, torch::kLong);
        auto* in = inputs.data_ptr<int64_t>();
        auto* out = targets.data_ptr<int64_t>();
        auto* gap = buckets > 0 ? gaps.data_ptr<int64_t>() : nullptr;
        for (int64_t i = 0; i < b; ++i) {
          const auto& ex = examples[order[start + i]];
          const int64_t n = ex.size - 1;  // positions with a next item
          for (int64_t j = 0; j < n; ++j) {
            in[i * width + width - n + j] = ex.items[j];
            out[i * width + width - n + j] = ex.items[j + 1];
            if (gap) gap[i * width + width - n + j] = ex.gaps[j];
          }
        }
        auto hidden = net->Encode(inputs, gaps).reshape({b * width, options.hidden});
        auto flat_targets = targets.reshape({-1});
        auto index = flat_targets.nonzero().squeeze(1);
        const int64_t positions = index.size(0);
        auto labels = flat_targets.index_select(0, index) - 1;
        // Mean cross-entropy over the positions, its logits a block of rows at a time: each
        // block's backward adds into the gradient of the detached states, which then flows
        // back through the encoder once.
        auto states = hidden.index_select(0, index);
        auto detached = states.detach().requires_grad_(true);
        const auto output = net->ItemWeights().slice(0, 1).t();
        const int64_t rows = static_cast<int64_t>(ScoreRows(n_items));
        optimizer.zero_grad();
        double batch_loss = 0;
        for (int64_t first = 0; first < positions; first += rows) {
          const int64_t last = std::min(positions, first + rows);
          auto logits = detached.slice(0, first, last).matmul(output);
          auto loss = torch::nn::functional::cross_entropy(
                          logits, labels.slice(0, first, last),
                          torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                      double(positions);
          loss.backward();
          batch_loss += loss.item<double>();
        }
        states.backward(detached.grad());
        optimizer.step();
        loss_sum += batch_loss * positions;
        loss_count += positions;
        if (steps && (end == order.size() || end / report_every != start / report_every)) {
          steps(epoch, end, order.size());
        }
      }
      SasrecEpoch record;
      record.epoch = epoch;
      record.loss = loss_count ? loss_sum / loss_count : 0;
      net->eval();
      if (validate && !val_targets.empty()) {
        record.val = impl->EvaluateUnchecked(val_histories, val_targets,
                                             options.mask_validation_history, val_times);
      }
      record.seconds = (SteadyMs() - e0) / 1000.0;
      impl->info.curve.push_back(record);
      impl->info.epochs_run = epoch;
      if (progress) progress(record);
      const bool out_of_time =
          options.max_seconds > 0 && (SteadyMs() - t0) / 1000.0 >= options.max_seconds;
      if (!validate || val_targets.empty()) {
        impl->info.best_epoch = epoch;
        if (out_of_time) break;
        continue;
      }
      if (record.val.ndcg10 > best_ndcg) {
        best_ndcg = record.val.ndcg10;
        impl->info.best_epoch = epoch;
        impl->info.best_val = record.val;
        since_best = 0;
        torch::NoGradGuard no_grad;
        for (const auto& p : net->named_parameters()) best_state[p.key()] = p.value().clone();
      } else if (++since_best >= options.patience) {
        break;
      }
      if (out_of_time) break;
    }
    if (!best_state.empty()) {
      torch::NoGradGuard no_grad;
      for (auto& p : net->named_parameters()) p.value().copy_(best_state.at(p.key()));
    }
    net->eval();
    impl->info.seconds = (SteadyMs() - t0) / 1000.0;
    return SasrecModel(std::move(impl));
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("sasrec training failed: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("sasrec training failed: ") + e.what());
  }
}

Status SasrecModel::Save(const std::string& path) const {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    return Status::Make(common::Code::kNotFound, "not_found",
                        "model directory does not exist: " + parent.string(), "path");
  }
  try {
    const auto& o = impl_->options;
    const auto& info = impl_->info;
    torch::serialize::OutputArchive archive;
    archive.write(
        "sasrec_meta",
        torch::tensor({kFormatVersion, int64_t(impl_->n_items), o.max_len, o.hidden, o.layers,
                       o.heads, o.batch, o.epochs, o.patience, int64_t(o.seed), int64_t(o.threads),
                       info.epochs_run, info.best_epoch, int64_t(info.best_val.users),
                       int64_t(o.arch), o.short_len, o.time_buckets},
                      torch::kLong));
    archive.write("sasrec_real",
                  torch::tensor({o.dropout, o.lr, o.weight_decay, info.seconds, info.best_val.hr5,
                                 info.best_val.hr10, info.best_val.hr20, info.best_val.ndcg5,
                                 info.best_val.ndcg10, info.best_val.ndcg20},
                                torch::kDouble));
    impl_->net->save(archive);
    archive.save_to(path);
    return Status::Ok();
  } catch (const c10::Error& e) {
    return Status::Internal("cannot save model to " + path + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal("cannot save model to " + path + ": " + e.what());
  }
}

Result<SasrecModel> SasrecModel::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::Make(common::Code::kNotFound, "not_found", "no such model file: " + path,
                        "path");
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor meta, real;
    if (!archive.try_read("sasrec_meta", meta) || !archive.try_read("sasrec_real", real) ||
        meta.numel() < 14 || real.numel() < 10) {
      return Status::Invalid("bad_model", path + " is not a streamrec SASRec model", "path");
    }
    const auto* m = meta.data_ptr<int64_t>();
    const auto* r = real.data_ptr<double>();
    // Version 1 (SASRec only) has no architecture fields.
    if ((m[0] != 1 && m[0] != kFormatVersion) || (m[0] == 2 && meta.numel() < 17)) {
      return Status::Invalid(
          "bad_model", path + ": unsupported model format version " + std::to_string(m[0]), "path");
    }
    auto impl = std::make_unique<Impl>();
    impl->n_items = static_cast<int32_t>(m[1]);
    SasrecOptions& o = impl->options;
    o.max_len = m[2], o.hidden = m[3], o.layers = m[4], o.heads = m[5], o.batch = m[6];
    o.epochs = m[7], o.patience = m[8], o.seed = uint64_t(m[9]), o.threads = int(m[10]);
    o.dropout = r[0], o.lr = r[1], o.weight_decay = r[2];
    if (m[0] >= 2) {
      if (m[14] != int64_t(SequenceArch::kSasrec) && m[14] != int64_t(SequenceArch::kSlirec)) {
        return Status::Invalid("bad_model", path + ": unknown architecture", "path");
      }
      o.arch = static_cast<SequenceArch>(m[14]);
      o.short_len = m[15], o.time_buckets = m[16];
    }
    if (Status s = ValidateOptions(o, impl->n_items); !s.ok()) {
      return Status::Invalid("bad_model", path + ": " + s.message, "path");
    }
    auto& info = impl->info;
    info.epochs_run = m[11], info.best_epoch = m[12], info.best_val.users = uint64_t(m[13]);
    info.seconds = r[3];
    info.best_val.hr5 = r[4], info.best_val.hr10 = r[5], info.best_val.hr20 = r[6];
    info.best_val.ndcg5 = r[7], info.best_val.ndcg10 = r[8], info.best_val.ndcg20 = r[9];
    impl->net = Net(impl->n_items, o);
    impl->net->load(archive);
    impl->net->eval();
    return SasrecModel(std::move(impl));
  } catch (const c10::Error& e) {
    return Status::Invalid("bad_model",
                           "cannot load model " + path + ": " + e.what_without_backtrace(), "path");
  } catch (const std::exception& e) {
    return Status::Invalid("bad_model", "cannot load model " + path + ": " + e.what(), "path");
  }
}

std::vector<std::pair<int32_t, float>> SasrecModel::TopK(std::span<const int32_t> history, size_t k,
                                                         bool mask_history,
                                                         std::span<const int64_t> times) const {
  const std::vector<std::vector<int32_t>> one = {{history.begin(), history.end()}};
  const std::vector<std::vector<int64_t>> one_times = {{times.begin(), times.end()}};
  return std::move(TopKBatch(one, k, mask_history, one_times)[0]);
}

std::vector<std::vector<std::pair<int32_t, float>>> SasrecModel::TopKBatch(
    std::span<const std::vector<int32_t>> histories, size_t k, bool mask_history,
    SequenceTimes times) const {
  std::vector<std::vector<std::pair<int32_t, float>>> out(histories.size());
  if (k == 0) return out;
  const int32_t n_items = impl_->n_items;
  try {
    c10::InferenceMode guard;
    impl_->ForEachScoreBlock(
        histories, times, [&](size_t start, auto batch, const Inputs& in, torch::Tensor& scores) {
          const auto last = in.seq.select(1, -1).contiguous();
          for (size_t i = 0; i < batch.size(); ++i) {
            if (last.data_ptr<int64_t>()[i] == 0) continue;  // no usable item
            float* row = scores.data_ptr<float>() + i * (size_t(n_items) + 1);
            if (mask_history) {
              for (int32_t item : batch[i]) {
                if (item > 0 && item <= n_items) row[item] = kNegInf;
              }
            }
            BestOfRow(row, n_items + 1, k, out[start + i]);
          }
        });
  } catch (const c10::Error&) {
    for (auto& list : out) list.clear();  // NOTE: only on allocation failure; callers fall back.
  }
  return out;
}

Status SasrecModel::ScoreBatch(std::span<const std::vector<int32_t>> histories,
                               std::vector<float>* scores, SequenceTimes times) const {
  try {
    c10::InferenceMode guard;
    const size_t width = size_t(impl_->n_items) + 1;
    scores->assign(histories.size() * width, 0.0f);
    impl_->ForEachScoreBlock(
        histories, times, [&](size_t start, auto, const Inputs&, torch::Tensor& block) {
          std::copy_n(block.data_ptr<float>(), block.numel(), scores->data() + start * width);
        });
    return Status::Ok();
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("sasrec scoring failed: ") + e.what_without_backtrace());
  }
}

Result<LooMetrics> SasrecModel::Evaluate(std::span<const std::vector<int32_t>> histories,
                                         std::span<const int32_t> targets, bool mask_history,
                                         SequenceTimes times) const {
  if (histories.size() != targets.size()) {
    return Status::Invalid("bad_argument", "histories and targets differ in size", "targets");
  }
  try {
    return impl_->EvaluateUnchecked(histories, targets, mask_history, times);
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("sasrec evaluation failed: ") + e.what_without_backtrace());
  }
}

}  // namespace streamrec::models
