#include "models/rerank.h"

#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace streamrec::models {
namespace {

const std::vector<ScoreScale> kScales{ScoreScale::kLogit, ScoreScale::kSimilarity};

TEST(RerankFeaturesTest, ReadsEachMembersShareAndRankAndTheSession) {
  // Softmax of logits log 3 / 0: .75 / .25; votes 2 / 2: .5 / .5.
  const std::vector<std::vector<ScoredItem>> lists{{{"b", std::log(3.0)}, {"a", 0.0}},
                                                   {{"a", 2.0}, {"c", 2.0}}};
  const std::vector<std::string> prefix{"a", "x", "c", "y"};
  auto out = RerankFeatures(lists, kScales, {}, prefix, 10);
  const size_t width = RerankFeatureCount(2);
  ASSERT_EQ(width, 8u);
  ASSERT_EQ(out.items.size(), 3u);  // a (.375), b (.375), c (.25): the blend's order
  ASSERT_EQ(out.features.size(), 3 * width);
  EXPECT_EQ(out.items[0].item_id, "a");
  const float* a = &out.features[0];
  EXPECT_FLOAT_EQ(a[0], 0.25f);  // member 0: share and rank
  EXPECT_FLOAT_EQ(a[1], 1);
  EXPECT_FLOAT_EQ(a[2], 0.5f);  // member 1
  EXPECT_FLOAT_EQ(a[3], 0);
  EXPECT_FLOAT_EQ(a[4], 0.375f);  // the blend's score
  EXPECT_FLOAT_EQ(a[5], 1);       // in the session, 3 clicks before its end, 4 long
  EXPECT_FLOAT_EQ(a[6], 3);
  EXPECT_FLOAT_EQ(a[7], 4);
  const float* b = &out.features[width];
  EXPECT_EQ(out.items[1].item_id, "b");
  EXPECT_FLOAT_EQ(b[2], 0);  // member 1 did not list it: past any list
  EXPECT_GT(b[3], float(kBlendDepth));
  EXPECT_FLOAT_EQ(b[5], 0);  // not in the session
  EXPECT_GT(b[6], 100);
  const float* c = &out.features[2 * width];
  EXPECT_FLOAT_EQ(c[6], 1);  // the second newest click
}

// Member 0 (logits) is sure of a new item; member 1 (votes) ranks the session's newest click
// first; the shopper always views that click again. The blend puts member 0's item first; the
// re-ranker learns to trust member 1 on items of the session.
RerankCandidates RepeatCase(int c, std::string* target) {
  const std::string id = "c" + std::to_string(c) + "_";
  std::vector<std::vector<ScoredItem>> lists(2);
  for (int k = 0; k < 20; ++k) lists[0].push_back({id + "n" + std::to_string(k), 10 - 0.5 * k});
  const std::vector<std::string> prefix{id + "p0", id + "p1", id + "p2"};
  lists[1] = {{prefix[2], 5.0 + c % 3}, {prefix[0], 3.0}, {prefix[1], 2.0}};
  for (int k = 5; k < 15; ++k) lists[1].push_back({id + "n" + std::to_string(k), 1.0});
  *target = prefix[2];
  return RerankFeatures(lists, kScales, {}, prefix, kRerankCandidates);
}

TEST(RerankerTest, LearnsWhatTheLinearMixMissesAndRoundTrips) {
  std::vector<RerankCandidates> groups;
  std::vector<std::string> targets;
  for (int c = 0; c < 200; ++c) {
    targets.emplace_back();
    groups.push_back(RepeatCase(c, &targets.back()));
    ASSERT_NE(groups.back().items[0].item_id, targets.back());  // the blend misses it
  }
  RerankerOptions options;
  options.rounds = 20;
  options.threads = 1;
  auto reranker = Reranker::Train(groups, targets, options);
  ASSERT_TRUE(reranker.ok()) << reranker.status().ToString();
  EXPECT_EQ(reranker->groups_trained(), 200u);
  EXPECT_EQ(reranker->features(), RerankFeatureCount(2));

  testing::TempDir dir;
  ASSERT_TRUE(reranker->Save(dir.Sub("rerank.json")).ok());
  auto loaded = Reranker::Load(dir.Sub("rerank.json"), RerankFeatureCount(2));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  for (int c = 1000; c < 1020; ++c) {  // cases it never saw
    std::string target;
    auto candidates = RepeatCase(c, &target);
    auto top = reranker->Rerank(candidates, 5);
    ASSERT_EQ(top.size(), 5u);
    EXPECT_EQ(top[0].item_id, target);
    EXPECT_EQ(loaded->Rerank(candidates, 5), top);  // identical scores after the round trip
  }
  // The scores are the booster's margins exactly as XGBoost predicts them.
  BoosterHandle booster = nullptr;
  ASSERT_EQ(XGBoosterCreate(nullptr, 0, &booster), 0);
  ASSERT_EQ(XGBoosterLoadModel(booster, dir.Sub("rerank.json").c_str()), 0);
  for (int c = 2000; c < 2005; ++c) {
    std::string target;
    auto candidates = RepeatCase(c, &target);
    if (c % 2 == 0) {  // missing values take each split's default side
      for (size_t f = 0; f < candidates.features.size(); f += 3) candidates.features[f] = NAN;
    }
    const size_t rows = candidates.items.size();
    const std::string array =
        "{\"data\": [" + std::to_string(reinterpret_cast<uintptr_t>(candidates.features.data())) +
        ", true], \"shape\": [" + std::to_string(rows) + ", " +
        std::to_string(RerankFeatureCount(2)) + "], \"typestr\": \"<f4\", \"version\": 3}";
    const char* config =
        "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
        "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}";
    const bst_ulong* shape = nullptr;
    bst_ulong dims = 0;
    const float* expected = nullptr;
    ASSERT_EQ(XGBoosterPredictFromDense(booster, array.c_str(), config, nullptr, &shape, &dims,
                                        &expected),
              0)
        << XGBGetLastError();
    std::map<std::string, float> xgboost_score;
    for (size_t i = 0; i < rows; ++i) xgboost_score[candidates.items[i].item_id] = expected[i];
    for (const auto& item : reranker->Rerank(candidates, rows)) {
      EXPECT_NEAR(item.score, xgboost_score.at(item.item_id), 1e-5) << item.item_id;
    }
  }
  XGBoosterFree(booster);
  // A model of another width (another member count) is refused, naming why.
  auto wrong = Reranker::Load(dir.Sub("rerank.json"), RerankFeatureCount(3));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message.find("features"), std::string::npos);
  EXPECT_FALSE(Reranker::Load(dir.Sub("missing.json"), RerankFeatureCount(2)).ok());
}

TEST(RerankerTest, NeedsCasesWithTheirTargetAmongTheCandidates) {
  std::string target;
  std::vector<RerankCandidates> groups{RepeatCase(0, &target)};
  const std::vector<std::string> elsewhere{"not-a-candidate"};
  auto reranker = Reranker::Train(groups, elsewhere);
  ASSERT_FALSE(reranker.ok());
  EXPECT_EQ(reranker.status().reason, "no_data");  // the 2-fold check keeps the blend's order
  EXPECT_EQ(reranker.status().field, "select");
  EXPECT_EQ(Reranker::Train(groups, {}).status().reason, "invalid_candidates");
}

}  // namespace
}  // namespace streamrec::models
