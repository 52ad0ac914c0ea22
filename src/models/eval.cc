#include "models/eval.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/line_reader.h"

namespace streamrec::models {
namespace {

using common::ForEachLine;

std::vector<std::string> SplitSpaces(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

void NextItemEvaluator::Add(std::span<const ScoredItem> ranked, std::string_view target) {
  ++metrics_.cases;
  size_t limit = std::min(ranked.size(), metrics_.k);
  for (size_t r = 0; r < limit; ++r) {
    if (ranked[r].item_id == target) {
      ++metrics_.hits;
      metrics_.reciprocal_rank_sum += 1.0 / static_cast<double>(r + 1);
      return;
    }
  }
}

common::Result<std::vector<std::vector<std::string>>> ReadSessions(const std::string& path,
                                                                   size_t max_sessions) {
  std::vector<std::vector<std::string>> sessions;
  auto status = ForEachLine(path, [&](std::string_view line) {
    auto items = SplitSpaces(line);
    if (!items.empty()) sessions.push_back(std::move(items));
    return max_sessions == 0 || sessions.size() < max_sessions;
  });
  if (!status.ok()) return status;
  return sessions;
}

common::Result<std::vector<NextItemCase>> ReadNextItemCases(const std::string& path,
                                                            size_t max_cases) {
  std::vector<NextItemCase> cases;
  size_t line_no = 0;
  common::Status bad;
  auto status = ForEachLine(path, [&](std::string_view line) {
    ++line_no;
    if (line.empty()) return true;
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) {
      bad = common::Status::Invalid("invalid_case",
                                    path + ":" + std::to_string(line_no) + ": no tab", "line");
      return false;
    }
    NextItemCase c{SplitSpaces(line.substr(0, tab)), std::string(line.substr(tab + 1))};
    if (!c.target.empty()) cases.push_back(std::move(c));
    return max_cases == 0 || cases.size() < max_cases;
  });
  if (!status.ok()) return status;
  if (!bad.ok()) return bad;
  return cases;
}

void ReplaySessions(ItemModel& model, std::span<const std::vector<std::string>> sessions,
                    const ReplayOptions& options) {
  int64_t t = options.start_ms;
  std::vector<WindowItem> window;
  events::Event event;
  event.tenant = options.tenant;
  event.type = events::EventType::kView;
  for (size_t s = 0; s < sessions.size(); ++s) {
    window.clear();
    event.user_id = "session-" + std::to_string(s);
    for (const auto& item : sessions[s]) {
      std::erase_if(window,
                    [&](const WindowItem& w) { return w.timestamp_ms < t - options.window_ms; });
      event.item_id = item;
      event.timestamp_ms = t;
      model.Observe(event, window);
      window.push_back({item, t});
      if (window.size() > options.window_max_items) window.erase(window.begin());
      t += options.step_ms;
    }
  }
}

NextItemReport EvaluateNextItem(const ItemModel& model, std::string_view tenant,
                                std::span<const NextItemCase> cases, size_t k, size_t window) {
  NextItemEvaluator recommend(k), popular(k);
  std::vector<ScoredItem> top = model.Popular(tenant, k);
  int64_t now = model.now_ms();
  std::vector<WindowItem> items;
  for (const auto& c : cases) {
    items.clear();
    size_t start = c.prefix.size() > window ? c.prefix.size() - window : 0;
    for (size_t i = start; i < c.prefix.size(); ++i) {
      items.push_back({c.prefix[i], now - static_cast<int64_t>(c.prefix.size() - i)});
    }
    recommend.Add(model.Recommend(tenant, items, k).items, c.target);
    popular.Add(top, c.target);
  }
  return {recommend.metrics(), popular.metrics()};
}

double NdcgAtRank(size_t rank) { return rank == 0 ? 0 : 1.0 / std::log2(rank + 1.0); }

MultiKEvaluator::MultiKEvaluator(std::vector<size_t> ks) : ks_(std::move(ks)) {
  std::sort(ks_.begin(), ks_.end());
  ks_.erase(std::unique(ks_.begin(), ks_.end()), ks_.end());
  hits_.assign(ks_.size(), 0);
  reciprocal_rank_sum_.assign(ks_.size(), 0);
  ndcg_sum_.assign(ks_.size(), 0);
}

void MultiKEvaluator::Add(std::span<const ScoredItem> ranked, std::string_view target) {
  size_t limit = std::min(ranked.size(), ks_.empty() ? 0 : ks_.back());
  size_t rank = 0;
  for (size_t r = 0; r < limit; ++r) {
    if (ranked[r].item_id == target) {
      rank = r + 1;
      break;
    }
  }
  AddRank(rank);
}

void MultiKEvaluator::AddRank(size_t rank) {
  ++cases_;
  if (rank == 0) return;
  for (size_t i = 0; i < ks_.size(); ++i) {
    if (rank > ks_[i]) continue;
    ++hits_[i];
    reciprocal_rank_sum_[i] += 1.0 / static_cast<double>(rank);
    ndcg_sum_[i] += NdcgAtRank(rank);
  }
}

void MultiKEvaluator::Merge(const MultiKEvaluator& other) {
  cases_ += other.cases_;
  for (size_t i = 0; i < ks_.size() && i < other.ks_.size(); ++i) {
    hits_[i] += other.hits_[i];
    reciprocal_rank_sum_[i] += other.reciprocal_rank_sum_[i];
    ndcg_sum_[i] += other.ndcg_sum_[i];
  }
}

size_t MultiKEvaluator::Index(size_t k) const {
  auto it = std::find(ks_.begin(), ks_.end(), k);
  return it == ks_.end() ? ks_.size() : static_cast<size_t>(it - ks_.begin());
}

double MultiKEvaluator::HitRate(size_t k) const {
  size_t i = Index(k);
  return cases_ && i < ks_.size() ? static_cast<double>(hits_[i]) / cases_ : 0;
}

double MultiKEvaluator::Mrr(size_t k) const {
  size_t i = Index(k);
  return cases_ && i < ks_.size() ? reciprocal_rank_sum_[i] / cases_ : 0;
}

double MultiKEvaluator::Ndcg(size_t k) const {
  size_t i = Index(k);
  return cases_ && i < ks_.size() ? ndcg_sum_[i] / cases_ : 0;
}

common::Result<std::vector<UserSequence>> ReadUserSequences(const std::string& path,
                                                            size_t max_users) {
  std::vector<UserSequence> users;
  auto status = ForEachLine(path, [&](std::string_view line) {
    auto fields = SplitSpaces(line);
    if (fields.empty()) return true;
    UserSequence u;
    u.user = std::move(fields.front());
    u.items.assign(std::make_move_iterator(fields.begin() + 1),
                   std::make_move_iterator(fields.end()));
    users.push_back(std::move(u));
    return max_users == 0 || users.size() < max_users;
  });
  if (!status.ok()) return status;
  return users;
}

namespace {

// Fills `out` up to k from `ranked` (best first), skipping `exclude`.
void TakeTop(std::span<const ScoredItem> ranked, size_t k, std::span<const std::string> exclude,
             std::vector<ScoredItem>& out) {
  std::unordered_set<std::string_view> skip(exclude.begin(), exclude.end());
  for (const auto& item : ranked) {
    if (out.size() >= k) break;
    if (!skip.contains(item.item_id)) out.push_back(item);
  }
}

class PopularityRecommender : public SessionRecommender {
 public:
  std::string name() const override { return "pop"; }
  std::string Describe() const override { return "click counts over the training sessions"; }
  void Fit(std::span<const std::vector<std::string>> sessions) override {
    std::unordered_map<std::string, uint64_t> counts;
    for (const auto& s : sessions) {
      for (const auto& item : s) ++counts[item];
    }
    ranked_.clear();
    for (auto& [item, count] : counts) ranked_.push_back({item, static_cast<double>(count)});
    KeepBest(ranked_, ranked_.size());
  }
  std::vector<ScoredItem> Score(std::span<const std::string>, size_t k,
                                std::span<const std::string> exclude) const override {
    std::vector<ScoredItem> out;
    TakeTop(ranked_, k, exclude, out);
    return out;
  }

 private:
  std::vector<ScoredItem> ranked_;
};

class CovisitationRecommender : public SessionRecommender {
 public:
  CovisitationRecommender(ItemModelOptions options, size_t window)
      : options_(options), window_(window) {}
  std::string name() const override { return "covis"; }
  std::string Describe() const override {
    std::ostringstream out;
    out << "ItemModel co-visitation, replay 10 s apart, window 5 min / 20 "
           "items, query window "
        << window_ << ", max_neighbors " << options_.max_neighbors << ", recency_decay "
        << options_.recency_decay;
    return out.str();
  }
  void Fit(std::span<const std::vector<std::string>> sessions) override {
    model_ = std::make_unique<ItemModel>(options_);
    ReplaySessions(*model_, sessions, replay_);
  }
  std::vector<ScoredItem> Score(std::span<const std::string> prefix, size_t k,
                                std::span<const std::string> exclude) const override {
    if (!model_) return {};
    std::vector<WindowItem> items;
    int64_t now = model_->now_ms();
    size_t start = prefix.size() > window_ ? prefix.size() - window_ : 0;
    for (size_t i = start; i < prefix.size(); ++i) {
      items.push_back({prefix[i], now - static_cast<int64_t>(prefix.size() - i)});
    }
    return model_->Recommend(replay_.tenant, items, k, exclude).items;
  }

 private:
  ItemModelOptions options_;
  size_t window_;
  ReplayOptions replay_;
  std::unique_ptr<ItemModel> model_;
};

class SessionKnnRecommender : public SessionRecommender {
 public:
  explicit SessionKnnRecommender(SessionKnnOptions options) : options_(options) {}
  std::string name() const override {
    return options_.kind == SessionKnnOptions::Kind::kSknn ? "sknn" : "vsknn";
  }
  std::string Describe() const override {
    std::ostringstream out;
    out << "k=" << options_.k << " sample_size=" << options_.sample_size;
    if (options_.kind == SessionKnnOptions::Kind::kSknn) {
      out << " cosine on binary sessions";
    } else {
      out << " weighting=p/L vote=1/d idf_weighting=" << options_.idf_weighting
          << " position_decay=" << options_.position_decay;
    }
    return out.str();
  }
  void Fit(std::span<const std::vector<std::string>> sessions) override {
    model_ = std::make_unique<SessionKnn>(options_);
    for (const auto& s : sessions) model_->AddSession(s);
  }
  std::vector<ScoredItem> Score(std::span<const std::string> prefix, size_t k,
                                std::span<const std::string> exclude) const override {
    return model_ ? model_->Recommend(prefix, k, exclude) : std::vector<ScoredItem>{};
  }

 private:
  SessionKnnOptions options_;
  std::unique_ptr<SessionKnn> model_;
};

}  // namespace

std::unique_ptr<SessionRecommender> MakePopularityRecommender() {
  return std::make_unique<PopularityRecommender>();
}

std::unique_ptr<SessionRecommender> MakeCovisitationRecommender(ItemModelOptions options,
                                                                size_t window) {
  return std::make_unique<CovisitationRecommender>(options, window);
}

std::unique_ptr<SessionRecommender> MakeSessionKnnRecommender(SessionKnnOptions options) {
  return std::make_unique<SessionKnnRecommender>(options);
}

std::unique_ptr<SessionRecommender> MakeRecommender(std::string_view name) {
  if (name == "pop") return MakePopularityRecommender();
  if (name == "covis") return MakeCovisitationRecommender();
  if (name == "sknn" || name == "vsknn") {
    SessionKnnOptions options;
    options.kind =
        name == "sknn" ? SessionKnnOptions::Kind::kSknn : SessionKnnOptions::Kind::kVsknn;
    return MakeSessionKnnRecommender(options);
  }
  return nullptr;
}

MultiKEvaluator EvaluateSessions(const SessionRecommender& model,
                                 std::span<const NextItemCase> cases, std::vector<size_t> ks,
                                 const ProgressFn& progress) {
  MultiKEvaluator eval(std::move(ks));
  const size_t depth = eval.ks().empty() ? 0 : eval.ks().back();
  for (size_t i = 0; i < cases.size(); ++i) {
    eval.Add(model.Score(cases[i].prefix, depth), cases[i].target);
    if (progress && (i % 512 == 0 || i + 1 == cases.size())) progress(i + 1, cases.size());
  }
  return eval;
}

namespace {

// Moves the sessions whose index `held_out` picks out of `sessions` (the others keep their
// order), each prefix of theirs becoming a prefix -> next-item case.
std::vector<NextItemCase> SplitSessions(std::vector<std::vector<std::string>>& sessions,
                                        const std::function<bool(size_t)>& held_out) {
  std::vector<NextItemCase> cases;
  size_t kept = 0;
  for (size_t s = 0; s < sessions.size(); ++s) {
    auto& items = sessions[s];
    if (!held_out(s)) {
      if (kept != s) sessions[kept] = std::move(items);
      ++kept;
      continue;
    }
    for (size_t k = 1; k < items.size(); ++k) {
      cases.push_back({std::vector<std::string>(items.begin(), items.begin() + k), items[k]});
    }
  }
  sessions.resize(kept);
  return cases;
}

}  // namespace

std::vector<NextItemCase> SplitNewestSessions(std::vector<std::vector<std::string>>& sessions) {
  const size_t keep = sessions.size() - sessions.size() / 10;
  return SplitSessions(sessions, [keep](size_t s) { return s >= keep; });
}

std::vector<NextItemCase> SplitEveryNthSession(std::vector<std::vector<std::string>>& sessions,
                                               size_t n) {
  return SplitSessions(sessions, [n](size_t s) { return s % n == n - 1; });
}

SessionKnnOptions SelectVsknnOptions(const SessionKnnOptions& options,
                                     const std::vector<std::vector<std::string>>& train,
                                     std::span<const UserSequence> users,
                                     const std::function<void(const std::string&)>& log) {
  const bool leave_one_out = !users.empty();
  std::vector<std::vector<std::string>> fit = train;
  std::vector<NextItemCase> cases;
  if (!leave_one_out) cases = SplitNewestSessions(fit);
  SessionKnnOptions best = options;
  best.kind = SessionKnnOptions::Kind::kVsknn;
  double best_score = -1;
  for (double idf : kSelectIdfWeightings) {
    for (double decay : kSelectPositionDecays) {
      SessionKnnOptions candidate = best;
      candidate.idf_weighting = idf;
      candidate.position_decay = decay;
      auto model = MakeSessionKnnRecommender(candidate);
      model->Fit(fit);
      const double score = leave_one_out ? EvaluateLeaveOneOut(*model, users, true).Ndcg(10)
                                         : EvaluateSessions(*model, cases).HitRate(20);
      if (log) {
        std::ostringstream line;
        line << "select: vsknn idf_weighting=" << idf << " position_decay=" << decay
             << " validation " << (leave_one_out ? "NDCG@10" : "HR@20") << "=" << score;
        log(line.str());
      }
      // Ties keep the earlier, simpler candidate.
      if (score > best_score) best_score = score, best = candidate;
    }
  }
  return best;
}

std::vector<std::vector<std::string>> LeaveOneOutTraining(std::span<const UserSequence> users) {
  std::vector<std::vector<std::string>> train;
  train.reserve(users.size());
  for (const auto& u : users) {
    if (u.items.size() < 3) continue;
    train.emplace_back(u.items.begin(), u.items.end() - 2);
  }
  return train;
}

MultiKEvaluator EvaluateLeaveOneOut(const SessionRecommender& model,
                                    std::span<const UserSequence> users, bool validation,
                                    std::vector<size_t> ks, const ProgressFn& progress) {
  MultiKEvaluator eval(std::move(ks));
  const size_t depth = eval.ks().empty() ? 0 : eval.ks().back();
  for (size_t i = 0; i < users.size(); ++i) {
    const auto& items = users[i].items;
    if (items.size() >= 3) {
      size_t target = items.size() - (validation ? 2 : 1);
      std::span<const std::string> history(items.data(), target);
      // A target repeated from the history is masked too, so it counts as a miss (as in S3-Rec).
      eval.Add(model.Score(history, depth, history), items[target]);
    }
    if (progress && (i % 512 == 0 || i + 1 == users.size())) progress(i + 1, users.size());
  }
  return eval;
}

}  // namespace streamrec::models
