#include "models/blend.h"

#include <gtest/gtest.h>

#include <cmath>

namespace streamrec::models {
namespace {

TEST(BlendTest, AveragesTheMembersDistributions) {
  // Logits 0 and log(3): softmax .25/.75. Votes 1 and 1: .5/.5.
  const std::vector<std::vector<ScoredItem>> lists{{{"b", std::log(3.0)}, {"a", 0.0}},
                                                   {{"a", 1.0}, {"c", 1.0}}};
  const std::vector<ScoreScale> scales{ScoreScale::kLogit, ScoreScale::kSimilarity};
  auto out = BlendLists(lists, scales, {}, 10);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].item_id, "a");  // (.25 + .5) / 2
  EXPECT_NEAR(out[0].score, 0.375, 1e-12);
  EXPECT_EQ(out[1].item_id, "b");  // .75 / 2
  EXPECT_NEAR(out[1].score, 0.375, 1e-12);
  EXPECT_EQ(out[2].item_id, "c");
  EXPECT_NEAR(out[2].score, 0.25, 1e-12);
  // a and b tie: the id decides, so the order is stable. n cuts the list.
  auto top = BlendLists(lists, scales, {}, 1);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].item_id, "a");
}

TEST(BlendTest, WeightsShiftTheMixture) {
  // Softmax .25/.75 and votes .5/.5, weighted 1 : 3 (relative): a = .25/4 + 3 * .5/4.
  const std::vector<std::vector<ScoredItem>> lists{{{"b", std::log(3.0)}, {"a", 0.0}},
                                                   {{"a", 1.0}, {"c", 1.0}}};
  const std::vector<ScoreScale> scales{ScoreScale::kLogit, ScoreScale::kSimilarity};
  const std::vector<double> weights{1, 3};
  auto out = BlendLists(lists, scales, weights, 10);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].item_id, "a");
  EXPECT_NEAR(out[0].score, 0.25 / 4 + 0.375, 1e-12);
  EXPECT_EQ(out[1].item_id, "c");
  EXPECT_NEAR(out[1].score, 0.375, 1e-12);
  EXPECT_NEAR(out[2].score, 0.75 / 4, 1e-12);
  // Alone, a weighted member still gets the whole mixture.
  const std::vector<std::vector<ScoredItem>> one{{}, {{"a", 1.0}, {"c", 1.0}}};
  EXPECT_NEAR(BlendLists(one, scales, weights, 10)[0].score, 0.5, 1e-12);
}

TEST(BlendTest, AnEmptyMemberLeavesItsWeightToTheOthers) {
  const std::vector<std::vector<ScoredItem>> lists{{}, {{"x", 3.0}, {"y", 1.0}}};
  const std::vector<ScoreScale> scales{ScoreScale::kLogit, ScoreScale::kSimilarity};
  auto out = BlendLists(lists, scales, {}, 5);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].item_id, "x");
  EXPECT_NEAR(out[0].score, 0.75, 1e-12);
  EXPECT_NEAR(out[1].score, 0.25, 1e-12);
  const std::vector<std::vector<ScoredItem>> none{{}, {}};
  EXPECT_TRUE(BlendLists(none, scales, {}, 5).empty());
}

TEST(BlendTest, LargeLogitsAndZeroVotesStayFinite) {
  const std::vector<std::vector<ScoredItem>> lists{{{"p", 1000.0}, {"q", 999.0}},
                                                   {{"p", 0.0}, {"r", 0.0}}};
  const std::vector<ScoreScale> scales{ScoreScale::kLogit, ScoreScale::kSimilarity};
  auto out = BlendLists(lists, scales, {}, 3);
  ASSERT_EQ(out.size(), 3u);
  double sum = 0;
  for (const auto& item : out) {
    EXPECT_TRUE(std::isfinite(item.score)) << item.item_id;
    sum += item.score;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);  // zero votes: a uniform share of the second half
  EXPECT_EQ(out[0].item_id, "p");
}

}  // namespace
}  // namespace streamrec::models
