#include "models/torch/sasrec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <unordered_map>

#include "fast_options.h"
#include "models/torch/sequence_data.h"
#include "support/datasets.h"
#include "support/temp_dir.h"

namespace streamrec::models {
namespace {

// Users walking a ring of 40 items: the next item is always the following one.
std::vector<std::vector<int32_t>> RingSequences(int users) {
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> seqs;
  for (int u = 0; u < users; ++u) {
    int32_t item = static_cast<int32_t>(rng() % 40) + 1;
    std::vector<int32_t> seq;
    for (int i = 0; i < 6 + u % 5; ++i) {
      seq.push_back(item);
      item = item % 40 + 1;
    }
    seqs.push_back(seq);
  }
  return seqs;
}

const SasrecModel& RingModel() {
  static SasrecModel* model = [] {
    SasrecOptions o = FastOptions();
    o.epochs = 15;
    o.patience = 0;  // no hold-out: train everything
    auto trained = SasrecModel::Train(RingSequences(300), 40, o);
    EXPECT_TRUE(trained.ok()) << trained.status().ToString();
    return new SasrecModel(std::move(trained).value());
  }();
  return *model;
}

TEST(SasrecTest, LearnsANextItemPattern) {
  const std::vector<int32_t> history = {7, 8, 9};
  auto top = RingModel().TopK(history, 3, true);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].first, 10);
  EXPECT_GE(top[0].second, top[1].second);
}

TEST(SasrecTest, TopKMasksHistoryOnlyWhenAsked) {
  const std::vector<int32_t> history = {10, 11, 12, 13, 14};
  for (const auto& [item, score] : RingModel().TopK(history, 40, true)) {
    EXPECT_EQ(std::count(history.begin(), history.end(), item), 0) << item;
  }
  EXPECT_EQ(RingModel().TopK(history, 40, true).size(), 35u);
  EXPECT_EQ(RingModel().TopK(history, 100, false).size(), 40u);  // every item, never 0
  EXPECT_TRUE(RingModel().TopK({}, 5, true).empty());
  const std::vector<int32_t> unknown = {0, 41, -3};
  EXPECT_TRUE(RingModel().TopK(unknown, 5, true).empty());
}

// TopK's k items are the k best of the full score row, best first; batched users get the same
// (six users: scored by one matrix product, where one user is a matrix-vector product).
TEST(SasrecTest, TopKIsTheBestOfTheFullScores) {
  const std::vector<std::vector<int32_t>> histories = {{3, 4, 5}, {20},     {39, 40, 1, 2},
                                                       {7},       {11, 30}, {25, 26, 27, 28}};
  std::vector<float> scores;
  ASSERT_TRUE(RingModel().ScoreBatch(histories, &scores).ok());
  const size_t width = 41;
  const auto batch = RingModel().TopKBatch(histories, 7, false);
  for (size_t u = 0; u < histories.size(); ++u) {
    std::vector<std::pair<int32_t, float>> full;
    for (int32_t id = 1; id <= 40; ++id) full.emplace_back(id, scores[u * width + id]);
    std::stable_sort(full.begin(), full.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    const auto top = RingModel().TopK(histories[u], 7, false);
    ASSERT_EQ(top.size(), 7u);
    ASSERT_EQ(batch[u].size(), 7u);
    for (size_t j = 0; j < 7; ++j) {
      EXPECT_EQ(top[j].first, full[j].first) << u << " " << j;
      EXPECT_NEAR(top[j].second, full[j].second, 1e-4);
      EXPECT_EQ(batch[u][j].first, top[j].first);
    }
  }
}

// Sessions hold out every N-th sequence whole: each of its prefixes is a validation case (here
// the 31st and 62nd sequences: 5 + 6 cases), and every other sequence trains to its last item.
TEST(SasrecTest, HoldsOutEveryNthSequenceWholeWhenAsked) {
  auto seqs = RingSequences(60);
  seqs.push_back({1, 2, 3, 4, 5, 6});
  seqs.push_back({9, 10, 11, 12, 13, 14, 15});
  SasrecOptions o = FastOptions();
  o.epochs = 4;
  o.holdout_every = 31;
  o.mask_validation_history = false;
  auto trained = SasrecModel::Train(seqs, 40, o);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_EQ(trained->train_info().best_val.users, 11u);

  o.holdout_every = 0;  // leave-one-out: one case per sequence of 3+ items
  auto loo = SasrecModel::Train(seqs, 40, o);
  ASSERT_TRUE(loo.ok()) << loo.status().ToString();
  EXPECT_EQ(loo->train_info().best_val.users, seqs.size());
}

TEST(SasrecTest, SaveLoadRoundTripGivesIdenticalScores) {
  testing::TempDir dir;
  const std::string path = dir.Sub("model.pt");
  ASSERT_TRUE(RingModel().Save(path).ok());
  auto loaded = SasrecModel::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->n_items(), 40);
  EXPECT_EQ(loaded->options().hidden, 32);
  EXPECT_EQ(loaded->train_info().epochs_run, RingModel().train_info().epochs_run);
  const std::vector<std::vector<int32_t>> histories = {{1, 2, 3}, {30}, {5, 9, 12, 40, 7}};
  std::vector<float> before, after;
  ASSERT_TRUE(RingModel().ScoreBatch(histories, &before).ok());
  ASSERT_TRUE(loaded->ScoreBatch(histories, &after).ok());
  ASSERT_EQ(before.size(), 3u * 41);
  EXPECT_EQ(before, after);
  EXPECT_EQ(RingModel().TopK(histories[2], 10, true), loaded->TopK(histories[2], 10, true));
}

TEST(SasrecTest, BadPathsAndInputsGiveClearErrors) {
  auto missing = SasrecModel::Load("/nonexistent/streamrec/model.pt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code, common::Code::kNotFound);
  EXPECT_NE(missing.status().message.find("/nonexistent/streamrec/model.pt"), std::string::npos);

  testing::TempDir dir;
  const std::string junk = dir.Sub("junk.pt");
  std::ofstream(junk) << "not a model";
  auto bad = SasrecModel::Load(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().reason, "bad_model");

  auto save = RingModel().Save("/nonexistent/streamrec/dir/model.pt");
  ASSERT_FALSE(save.ok());
  EXPECT_EQ(save.code, common::Code::kNotFound);

  auto data = ReadIdSequences("/nonexistent/streamrec/Beauty.txt.gz");
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code, common::Code::kNotFound);

  EXPECT_EQ(SasrecModel::Train({}, 10, FastOptions()).status().reason, "no_data");
  EXPECT_EQ(SasrecModel::Train({{1, 2, 11}}, 10, FastOptions()).status().reason, "bad_item");
  SasrecOptions bad_heads = FastOptions();
  bad_heads.heads = 3;
  EXPECT_EQ(SasrecModel::Train({{1, 2, 3}}, 10, bad_heads).status().field, "hidden");
}

TEST(SequenceDataTest, ReadsBothFileFormats) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("per_user.txt")) << "1 5 6 7\n2 7 8\n";
  std::ofstream(dir.Sub("per_event.txt")) << "1 5\n1 6\n1 7\n2 7\n2 8\n";
  for (const char* name : {"per_user.txt", "per_event.txt"}) {
    auto data = ReadIdSequences(dir.Sub(name));
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    EXPECT_EQ(data->n_items, 8);
    EXPECT_EQ(data->sequences, (std::vector<std::vector<int32_t>>{{5, 6, 7}, {7, 8}}));
  }
  std::ofstream(dir.Sub("bad.txt")) << "1 5 x\n";
  EXPECT_EQ(ReadIdSequences(dir.Sub("bad.txt")).status().reason, "bad_line");
}

TEST(SequenceDataTest, LooMetricsAndPopularity) {
  LooMetrics m;
  m.Add(0);   // hit everywhere, gain 1
  m.Add(7);   // hit at 10 and 20
  m.Add(30);  // miss
  m.Finish();
  EXPECT_EQ(m.users, 3u);
  EXPECT_DOUBLE_EQ(m.hr5, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.hr10, 2.0 / 3);
  EXPECT_NEAR(m.ndcg10, (1.0 + 1.0 / std::log2(9.0)) / 3, 1e-12);

  // Item 3 is most popular; masking it from user 0's history moves item 2 to rank 0.
  const std::vector<std::vector<int32_t>> train = {{3, 3, 3, 2, 2, 1}};
  const std::vector<std::vector<int32_t>> histories = {{3}, {1}};
  const std::vector<int32_t> targets = {2, 2};
  auto masked = EvaluatePopularity(train, histories, targets, 3, true);
  EXPECT_DOUBLE_EQ(masked.ndcg5, (1.0 + 1.0 / std::log2(3.0)) / 2);
}

// Real data made dense enough to learn from in seconds: the first 3000 Beauty users,
// only items seen at least 5 times among them (renumbered), users left with >= 4 items.
TEST(SasrecTest, BeatsPopularityOnBeautySlice) {
  auto path = testing::DatasetPath("s3rec-amazon-yelp-lastfm/Beauty.txt.gz");
  if (!path) GTEST_SKIP() << "shared datasets not found";
  auto data = ReadIdSequences(*path, 3000);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  std::unordered_map<int32_t, int32_t> count, ids;
  for (const auto& seq : data->sequences) {
    for (int32_t item : seq) ++count[item];
  }
  std::vector<std::vector<int32_t>> train, histories;
  std::vector<int32_t> targets;
  for (const auto& full : data->sequences) {
    std::vector<int32_t> seq;
    for (int32_t item : full) {
      if (count[item] < 5) continue;
      seq.push_back(ids.try_emplace(item, int32_t(ids.size()) + 1).first->second);
    }
    if (seq.size() < 4) continue;
    train.emplace_back(seq.begin(), seq.end() - 1);
    histories.emplace_back(seq.begin(), seq.end() - 1);
    targets.push_back(seq.back());
  }
  const int32_t n_items = static_cast<int32_t>(ids.size());
  SasrecOptions options = FastOptions();
  options.patience = 0;  // fixed epochs on everything but the test items
  options.epochs = 10;
  auto model = SasrecModel::Train(train, n_items, options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto test = model->Evaluate(histories, targets, true);
  ASSERT_TRUE(test.ok());
  const LooMetrics pop = EvaluatePopularity(train, histories, targets, n_items);
  std::printf("beauty slice: %zu users, %d items, %lld epochs; sasrec %s\npopularity %s\n",
              targets.size(), n_items, (long long)model->train_info().epochs_run,
              test->ToJson().c_str(), pop.ToJson().c_str());
  EXPECT_GT(test->ndcg10, pop.ndcg10);
  EXPECT_GT(test->hr20, pop.hr20);
}

}  // namespace
}  // namespace streamrec::models
