#include "models/session_knn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "models/eval.h"
#include "support/datasets.h"
#include "support/temp_dir.h"

namespace streamrec::models {
namespace {

using Sessions = std::vector<std::vector<std::string>>;

SessionKnnOptions Options(SessionKnnOptions::Kind kind) {
  SessionKnnOptions options;
  options.kind = kind;
  return options;
}

TEST(SessionKnnTest, SknnScoresBySummedCosine) {
  SessionKnn knn(Options(SessionKnnOptions::Kind::kSknn));
  knn.AddSession(std::vector<std::string>{"a", "b", "c"});
  knn.AddSession(std::vector<std::string>{"a", "d"});
  knn.AddSession(std::vector<std::string>{"x", "y"});  // shares nothing with the query
  std::vector<std::string> query = {"a"};
  auto out = knn.Recommend(query, 10);
  // cos({a},{a,b,c}) = 1/sqrt(3); cos({a},{a,d}) = 1/sqrt(2).
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].item_id, "a");
  EXPECT_NEAR(out[0].score, 1 / std::sqrt(3.0) + 1 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(out[1].item_id, "d");
  EXPECT_NEAR(out[1].score, 1 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(out[2].item_id, "b");
  EXPECT_EQ(out[3].item_id, "c");
  std::vector<std::string> exclude = {"a", "d"};
  out = knn.Recommend(query, 10, exclude);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].item_id, "b");
}

TEST(SessionKnnTest, VsknnWeighsRecentQueryItems) {
  SessionKnn knn(Options(SessionKnnOptions::Kind::kVsknn));
  knn.AddSession(std::vector<std::string>{"old", "p"});  // shares the query's first item
  knn.AddSession(std::vector<std::string>{"new", "q"});  // shares the query's last item
  std::vector<std::string> query = {"old", "mid", "new"};
  auto out = knn.Recommend(query, 10);
  std::map<std::string, double> scores;
  for (const auto& s : out) scores[s.item_id] = s.score;
  // Weights p/L: old 1/3, new 1; similarity / 3 distinct items; vote decay 1/d.
  EXPECT_NEAR(scores["q"], (1.0 / 3) * 1.0, 1e-12);
  EXPECT_NEAR(scores["p"], (1.0 / 9) * (1.0 / 3), 1e-12);
  EXPECT_EQ(out.front().item_id, "new");  // ties with q, broken by id
}

// position_decay: a neighbour's items count less the further they are from the shared item
// the query clicked last (here "c", at the neighbour's third place), exp(-d / decay).
TEST(SessionKnnTest, VsknnPositionDecayFavoursItemsNextToTheSharedOne) {
  SessionKnnOptions options = Options(SessionKnnOptions::Kind::kVsknn);
  options.position_decay = 2;
  SessionKnn knn(options);
  knn.AddSession(std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
  std::vector<std::string> query = {"x", "c"};
  std::map<std::string, double> scores;
  for (const auto& s : knn.Recommend(query, 10)) scores[s.item_id] = s.score;
  // Similarity: weight of c (2/2) over 2 distinct query items; vote decay 1/1.
  const double vote = 0.5;
  EXPECT_NEAR(scores["c"], vote, 1e-12);
  EXPECT_NEAR(scores["b"], vote * std::exp(-0.5), 1e-12);
  EXPECT_NEAR(scores["d"], vote * std::exp(-0.5), 1e-12);
  EXPECT_NEAR(scores["f"], vote * std::exp(-1.5), 1e-12);
  EXPECT_GT(scores["e"], scores["f"]);

  SessionKnn flat(Options(SessionKnnOptions::Kind::kVsknn));  // off: one vote for all
  flat.AddSession(std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
  for (const auto& s : flat.Recommend(query, 10)) EXPECT_NEAR(s.score, vote, 1e-12) << s.item_id;
}

TEST(SessionKnnTest, BoundedAndIncremental) {
  SessionKnnOptions options = Options(SessionKnnOptions::Kind::kSknn);
  options.max_sessions = 2;
  options.max_open_sessions = 1;
  SessionKnn knn(options);
  knn.AddSession(std::vector<std::string>{"a", "b"});
  knn.AddSession(std::vector<std::string>{"c", "d"});
  knn.AddSession(std::vector<std::string>{"e", "f"});  // evicts {a, b}
  EXPECT_EQ(knn.session_count(), 2u);
  EXPECT_EQ(knn.item_count(), 4u);
  std::vector<std::string> query = {"a"};
  EXPECT_TRUE(knn.Recommend(query, 5).empty());

  knn.Observe("s1", "c");
  knn.Observe("s1", "x");
  auto out = knn.RecommendForSession("s1", 5);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front().item_id, "c");
  knn.Observe("s2",
              "y");  // more than one open session: s1 is indexed, {c, d} evicted
  EXPECT_TRUE(knn.RecommendForSession("s1", 5).empty());
  EXPECT_EQ(knn.session_count(), 2u);
  query = {"x"};
  out = knn.Recommend(query, 5);
  ASSERT_EQ(out.size(), 2u);  // c and x from the indexed s1
  knn.CloseSession("s2");
  EXPECT_EQ(knn.session_count(), 2u);
}

// Real data: a slice of the Diginetica SR-GNN split.
class DigineticaSliceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto train_path = testing::DatasetPath("diginetica-srgnn/train_sessions.txt.gz");
    auto test_path = testing::DatasetPath("diginetica-srgnn/test_pairs.tsv.gz");
    if (!train_path || !test_path) return;
    auto sessions = ReadSessions(*train_path);
    auto cases = ReadNextItemCases(*test_path, 3'000);
    if (!sessions.ok() || !cases.ok()) return;
    // The most recent 30k sessions: the file is in time order and the test week follows it.
    train_ = new Sessions(sessions->end() - 30'000, sessions->end());
    cases_ = new std::vector<NextItemCase>(std::move(cases).value());
  }
  static void TearDownTestSuite() {
    delete train_;
    delete cases_;
    train_ = nullptr;
    cases_ = nullptr;
  }
  void SetUp() override {
    if (!train_) GTEST_SKIP() << "datasets not present";
  }
  static Sessions* train_;
  static std::vector<NextItemCase>* cases_;
};
Sessions* DigineticaSliceTest::train_ = nullptr;
std::vector<NextItemCase>* DigineticaSliceTest::cases_ = nullptr;

TEST_F(DigineticaSliceTest, KnnBeatsPopularity) {
  std::map<std::string, MultiKEvaluator> results;
  for (const char* name : {"pop", "sknn", "vsknn"}) {
    auto model = MakeRecommender(name);
    model->Fit(*train_);
    results.emplace(name, EvaluateSessions(*model, *cases_));
    const auto& r = results.at(name);
    std::printf(
        "diginetica slice (30k sessions, 3k pairs) %-5s HR@20=%.4f MRR@20=%.4f "
        "NDCG@20=%.4f\n",
        name, r.HitRate(20), r.Mrr(20), r.Ndcg(20));
    RecordProperty(std::string(name) + "_hr20", std::to_string(r.HitRate(20)));
  }
  const auto& pop = results.at("pop");
  for (const char* name : {"sknn", "vsknn"}) {
    const auto& r = results.at(name);
    EXPECT_EQ(r.cases(), cases_->size());
    EXPECT_GT(r.HitRate(20), 5 * pop.HitRate(20)) << name;
    EXPECT_GT(r.Mrr(20), 5 * pop.Mrr(20)) << name;
    EXPECT_GT(r.HitRate(20), 0.25) << name;
  }
  // V-SKNN's position weighting should not lose to plain SKNN.
  EXPECT_GE(results.at("vsknn").HitRate(20), results.at("sknn").HitRate(20) - 0.01);
}

TEST_F(DigineticaSliceTest, SaveLoadRoundTripGivesIdenticalScores) {
  for (auto kind : {SessionKnnOptions::Kind::kSknn, SessionKnnOptions::Kind::kVsknn}) {
    SessionKnnOptions options = Options(kind);
    options.idf_weighting = kind == SessionKnnOptions::Kind::kVsknn ? 1.0 : 0.0;
    options.max_sessions = 20'000;  // eviction must survive the round trip too
    SessionKnn knn(options);
    for (const auto& s : *train_) knn.AddSession(s);
    knn.Observe("open-1", (*train_)[0][0]);
    testing::TempDir dir;
    std::string path = dir.path() + "/knn.bin";
    ASSERT_TRUE(knn.Save(path).ok());
    SessionKnn loaded(options);
    auto status = loaded.Load(path);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(loaded.session_count(), knn.session_count());
    EXPECT_EQ(loaded.item_count(), knn.item_count());
    EXPECT_EQ(loaded.RecommendForSession("open-1", 20), knn.RecommendForSession("open-1", 20));
    for (size_t i = 0; i < 300; ++i) {
      const auto& c = (*cases_)[i];
      ASSERT_EQ(loaded.Recommend(c.prefix, 20), knn.Recommend(c.prefix, 20)) << i;
    }
    EXPECT_EQ(loaded.Serialize(), knn.Serialize());
  }
  SessionKnn knn;
  EXPECT_FALSE(knn.Deserialize("garbage").ok());
  EXPECT_FALSE(knn.Load("/nonexistent/streamrec/knn.bin").ok());
}

}  // namespace
}  // namespace streamrec::models
