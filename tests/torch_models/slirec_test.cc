// The SLi-Rec-style long/short-term variant of SASRec (SequenceArch::kSlirec) and the timed
// sequence reader it trains on.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "fast_options.h"
#include "models/torch/sasrec.h"
#include "models/torch/sequence_data.h"
#include "support/datasets.h"
#include "support/temp_dir.h"

namespace streamrec::models {
namespace {

SasrecOptions SlirecOptions() {
  SasrecOptions o = FastOptions();
  o.arch = SequenceArch::kSlirec;
  o.epochs = 15;
  o.patience = 0;
  return o;
}

TEST(SequenceDataTest, GapBuckets) {
  EXPECT_EQ(GapBucket(0, 32), 1);
  EXPECT_EQ(GapBucket(-5, 32), 1);  // out of order: as simultaneous
  EXPECT_EQ(GapBucket(1, 32), 2);
  EXPECT_EQ(GapBucket(2, 32), 2);
  EXPECT_EQ(GapBucket(3, 32), 3);
  EXPECT_EQ(GapBucket(86400, 32), 17);  // a day: floor(log2(86401)) = 16
  EXPECT_EQ(GapBucket(int64_t(1) << 40, 32), 31);
  EXPECT_EQ(GapBucket(1000, 4), 3);
}

TEST(SequenceDataTest, ReadsRecboleFilesInTimeOrder) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("x.inter"))
      << "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
      << "u1\tb\t3\t200\n"
      << "u2\ta\t5\t50\n"
      << "u1\ta\t4\t100\n"
      << "u1\tc\t4\t200\n";
  auto data = ReadIdSequences(dir.Sub("x.inter"));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->vocab, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(data->n_items, 3);
  // u1 sorted by time, the tie (b, c at 200) in file order; u2 second (first seen second).
  EXPECT_EQ(data->sequences, (std::vector<std::vector<int32_t>>{{2, 1, 3}, {2}}));
  EXPECT_EQ(data->times, (std::vector<std::vector<int64_t>>{{100, 200, 200}, {50}}));
  EXPECT_EQ(ReadIdSequences(dir.Sub("x.inter"), 1)->sequences.size(), 1u);
  std::ofstream(dir.Sub("bad.inter")) << "user_id:token\titem_id:token\ttimestamp:float\nu1\ta\n";
  EXPECT_EQ(ReadIdSequences(dir.Sub("bad.inter")).status().reason, "bad_line");
  std::ofstream(dir.Sub("spaces.inter")) << "user_id:token item_id:token\nu1 a\n";
  EXPECT_EQ(ReadIdSequences(dir.Sub("spaces.inter")).status().reason, "bad_header");
}

// Users walk a ring of 40 items; the pause before each item is short (30 s) or long (2 days)
// at random, and the step from an item to the next is +1 after a short pause before it and +3
// after a long one: the next item depends on the last gap, which only the time-aware model
// sees.
struct TimedRing {
  std::vector<std::vector<int32_t>> items;
  std::vector<std::vector<int64_t>> times;
};
TimedRing MakeTimedRing(int users, uint32_t seed) {
  std::mt19937 rng(seed);
  TimedRing out;
  for (int u = 0; u < users; ++u) {
    int32_t item = static_cast<int32_t>(rng() % 40) + 1;
    int64_t t = 1'000'000;
    std::vector<int32_t> seq{item};
    std::vector<int64_t> times{t};
    bool long_pause = false;  // before the first item: unknown, +1
    for (int i = 0; i < 7 + u % 4; ++i) {
      item = (item - 1 + (long_pause ? 3 : 1)) % 40 + 1;
      long_pause = rng() % 2;
      t += long_pause ? 2 * 86400 : 30;
      seq.push_back(item);
      times.push_back(t);
    }
    out.items.push_back(seq);
    out.times.push_back(times);
  }
  return out;
}

double TimedRingAccuracy(const SasrecModel& model, const TimedRing& test) {
  int hits = 0;
  for (size_t u = 0; u < test.items.size(); ++u) {
    const auto& seq = test.items[u];
    const std::span<const int32_t> history(seq.data(), seq.size() - 1);
    const std::span<const int64_t> times(test.times[u].data(), seq.size() - 1);
    auto top = model.TopK(history, 1, false, times);
    hits += !top.empty() && top[0].first == seq.back();
  }
  return double(hits) / test.items.size();
}

TEST(SlirecTest, UsesTheTimeGapsThatSasrecCannotSee) {
  const TimedRing train = MakeTimedRing(400, 1), test = MakeTimedRing(200, 2);
  auto slirec = SasrecModel::Train(train.items, 40, SlirecOptions(), {}, train.times);
  ASSERT_TRUE(slirec.ok()) << slirec.status().ToString();
  SasrecOptions plain = SlirecOptions();
  plain.arch = SequenceArch::kSasrec;
  auto sasrec = SasrecModel::Train(train.items, 40, plain, {}, train.times);
  ASSERT_TRUE(sasrec.ok()) << sasrec.status().ToString();
  const double with_time = TimedRingAccuracy(*slirec, test);
  const double without = TimedRingAccuracy(*sasrec, test);
  std::printf("timed ring top-1: slirec %.3f sasrec %.3f\n", with_time, without);
  EXPECT_GT(with_time, 0.8);
  EXPECT_LT(without, 0.75);  // a coin flip between +1 and +3 at best
}

TEST(SlirecTest, SaveLoadRoundTripGivesIdenticalScores) {
  const TimedRing train = MakeTimedRing(100, 3);
  SasrecOptions o = SlirecOptions();
  o.epochs = 2;
  o.short_len = 4;
  auto model = SasrecModel::Train(train.items, 40, o, {}, train.times);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  testing::TempDir dir;
  ASSERT_TRUE(model->Save(dir.Sub("model.pt")).ok());
  auto loaded = SasrecModel::Load(dir.Sub("model.pt"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->options().arch, SequenceArch::kSlirec);
  EXPECT_EQ(loaded->options().short_len, 4);
  EXPECT_EQ(loaded->options().time_buckets, 32);
  std::vector<float> before, after;
  ASSERT_TRUE(model->ScoreBatch(train.items, &before, train.times).ok());
  ASSERT_TRUE(loaded->ScoreBatch(train.items, &after, train.times).ok());
  EXPECT_EQ(before, after);
  // Without times every gap is "unknown": a different, still finite, answer.
  std::vector<float> untimed;
  ASSERT_TRUE(loaded->ScoreBatch(train.items, &untimed).ok());
  EXPECT_NE(before, untimed);
  EXPECT_EQ(model->TopK(train.items[0], 5, true, train.times[0]),
            loaded->TopK(train.items[0], 5, true, train.times[0]));
  SasrecOptions bad = o;
  bad.time_buckets = 1;
  EXPECT_EQ(SasrecModel::Train(train.items, 40, bad).status().field, "time_buckets");
}

// MovieLens-100k (RecBole, with timestamps): trained on everything but each user's last
// item, it must rank that held-out item better than popularity does.
TEST(SlirecTest, BeatsPopularityOnMovielens) {
  auto path = testing::DatasetPath("movielens-100k-recbole/ml-100k.inter.gz");
  if (!path) GTEST_SKIP() << "shared datasets not found";
  auto data = ReadIdSequences(*path);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->sequences.size(), 943u);
  ASSERT_EQ(data->times.size(), 943u);
  std::vector<std::vector<int32_t>> train;
  std::vector<std::vector<int64_t>> times;
  std::vector<int32_t> targets;
  for (size_t u = 0; u < data->sequences.size(); ++u) {
    const auto& seq = data->sequences[u];
    train.emplace_back(seq.begin(), seq.end() - 1);
    times.emplace_back(data->times[u].begin(), data->times[u].end() - 1);
    targets.push_back(seq.back());
  }
  SasrecOptions o = SlirecOptions();
  o.max_len = 50;
  o.epochs = 6;
  o.batch = 64;  // keeps each step's logits under glibc's mmap threshold (docs/SASREC.md)
  auto model = SasrecModel::Train(train, data->n_items, o, {}, times);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto test = model->Evaluate(train, targets, true, times);
  ASSERT_TRUE(test.ok());
  const LooMetrics pop = EvaluatePopularity(train, train, targets, data->n_items);
  std::printf("ml-100k: slirec %s\npopularity %s\n", test->ToJson().c_str(), pop.ToJson().c_str());
  EXPECT_GT(test->ndcg10, pop.ndcg10);
  EXPECT_GT(test->hr20, pop.hr20);
}

}  // namespace
}  // namespace streamrec::models
