#include "registry/model_host.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "models/rerank.h"
#include "support/temp_dir.h"

namespace streamrec::registry {
namespace {

using streamrec::testing::TempDir;

// A V-SKNN version in which "q" is always followed by items with the given prefix, so every answer
// tells which version gave it.
int64_t RegisterKnn(Registry& reg, const std::string& name, const std::string& prefix,
                    const std::string& dir) {
  models::SessionKnnOptions options;
  models::SessionKnn knn(options);
  for (int s = 0; s < 20; ++s) {
    std::vector<std::string> session{"q", prefix + std::to_string(s % 5)};
    knn.AddSession(session);
  }
  const std::string file = dir + "/" + prefix + ".bin";
  EXPECT_TRUE(knn.Save(file).ok());
  Manifest m;
  m.name = name;
  m.type = ModelType::kVsknn;
  m.options_json = KnnOptionsJson(options);
  return reg.Register(m, std::vector<Artifact>{{"knn.bin", file, ""}}).value();
}

//! Versions 1 ("a…", production) and 2 ("b…", served to 30% of users) of model "m".
std::shared_ptr<ModelHost> AbHost(const TempDir& tmp) {
  auto reg = Registry::Open(tmp.Sub("models"));
  RegisterKnn(*reg, "m", "a", tmp.path());
  RegisterKnn(*reg, "m", "b", tmp.path());
  EXPECT_TRUE(reg->Promote("m", 1).ok());
  auto host = ModelHost::Open(*reg, "m", {.poll_ms = 0, .b_version = 2, .b_percent = 30});
  EXPECT_TRUE(host.ok()) << host.status().ToString();
  return host.ok() ? *host : nullptr;
}

TEST(ModelHostTest, ServesProductionAndFallsBackWhenCold) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  RegisterKnn(*reg, "m", "a", tmp.path());
  auto host = ModelHost::Open(*reg, "m", {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  std::vector<std::string> window{"q"};
  // Nothing promoted yet: no answer, the caller's co-visitation list stands.
  EXPECT_TRUE((*host)->Recommend("t", "u", window, 5).items.empty());
  ASSERT_TRUE(reg->Promote("m", 1).ok());
  ASSERT_TRUE((*host)->Reload().ok());
  auto out = (*host)->Recommend("t", "u", window, 5);
  EXPECT_EQ(out.model, "m@v1");
  ASSERT_EQ(out.items.size(), 5u);
  EXPECT_EQ(out.items[0].item_id[0], 'a');
  std::vector<std::string> unknown{"never-seen"};
  EXPECT_TRUE((*host)->Recommend("t", "u", unknown, 5).items.empty());
}

TEST(ModelHostTest, HotSwapUnderConcurrentCalls) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  RegisterKnn(*reg, "m", "a", tmp.path());
  RegisterKnn(*reg, "m", "b", tmp.path());
  ASSERT_TRUE(reg->Promote("m", 1).ok());
  auto host = ModelHost::Open(*reg, "m", {.poll_ms = 0});
  ASSERT_TRUE(host.ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> calls{0}, v1{0}, v2{0}, bad{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      std::vector<std::string> window{"q"};
      while (!stop.load()) {
        auto out = (*host)->Recommend("t", "user", window, 5);
        ++calls;
        // Exactly one version answered: its label and all its items agree.
        char want = out.model == "m@v1" ? 'a' : out.model == "m@v2" ? 'b' : '?';
        bool consistent = want != '?' && out.items.size() == 5;
        for (const auto& item : out.items) consistent = consistent && item.item_id[0] == want;
        if (!consistent) ++bad;
        (want == 'a' ? v1 : v2)++;
      }
    });
  }
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((i % 2 == 0 ? reg->Promote("m", 2) : reg->Rollback("m").status()).ok());
    ASSERT_TRUE((*host)->Reload().ok());
    EXPECT_EQ((*host)->version(), i % 2 == 0 ? 2 : 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop = true;
  for (auto& t : callers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(v1.load(), 0u);
  EXPECT_GT(v2.load(), 0u);
  EXPECT_EQ(v1 + v2, calls.load());
}

TEST(ModelHostTest, PollPicksUpPromote) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  RegisterKnn(*reg, "m", "a", tmp.path());
  RegisterKnn(*reg, "m", "b", tmp.path());
  ASSERT_TRUE(reg->Promote("m", 1).ok());
  auto host = ModelHost::Open(*reg, "m", {.poll_ms = 20});
  ASSERT_TRUE(host.ok());
  EXPECT_EQ((*host)->version(), 1);
  ASSERT_TRUE(reg->Promote("m", 2).ok());
  for (int i = 0; i < 200 && (*host)->version() != 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*host)->version(), 2);
}

TEST(ModelHostTest, AbSplitIsStablePerUser) {
  TempDir tmp;
  auto host = AbHost(tmp);
  ASSERT_TRUE(host);
  std::vector<std::string> window{"q"};
  int b = 0;
  for (int u = 0; u < 2000; ++u) {
    const std::string user = "user-" + std::to_string(u);
    auto first = host->Recommend("t", user, window, 3);
    auto again = host->Recommend("t", user, window, 3);
    EXPECT_EQ(first.model, again.model);
    if (first.model == "m@v2/B") {
      ++b;
      EXPECT_EQ(first.items[0].item_id[0], 'b');
    } else {
      EXPECT_EQ(first.model, "m@v1/A");
    }
  }
  EXPECT_NEAR(b / 2000.0, 0.30, 0.04);
  // The bucket is a fixed function of the id (FNV-1a), the same in every process.
  EXPECT_EQ(ModelHost::Bucket("user-1"), ModelHost::Bucket("user-1"));
  EXPECT_LT(ModelHost::Bucket("anything"), 100u);
}

TEST(ModelHostTest, BatchGivesTheSameAnswersAsSingleCalls) {
  TempDir tmp;
  auto host = AbHost(tmp);
  ASSERT_TRUE(host);
  const std::vector<std::string> window{"q"}, cold{"never-seen"};
  std::vector<std::string> users;
  for (int u = 0; u < 200; ++u) users.push_back("user-" + std::to_string(u));
  std::vector<models::RecommendRequest> requests;
  for (size_t u = 0; u < users.size(); ++u) {
    requests.push_back({"t", users[u], u % 7 == 0 ? cold : window, 1 + u % 5});
  }
  auto batch = host->RecommendBatch(requests);
  ASSERT_EQ(batch.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    auto single = host->Recommend(r.tenant, r.user, r.items, r.n);
    EXPECT_EQ(batch[i].model, single.model) << i;
    ASSERT_EQ(batch[i].items.size(), single.items.size()) << i;
    for (size_t k = 0; k < single.items.size(); ++k) {
      EXPECT_EQ(batch[i].items[k].item_id, single.items[k].item_id) << i;
    }
  }
}

TEST(KnnOptionsTest, RoundTrip) {
  models::SessionKnnOptions o;
  o.kind = models::SessionKnnOptions::Kind::kSknn;
  o.k = 7;
  o.sample_size = 33;
  o.idf_weighting = 1;
  o.position_decay = 4;
  auto back = KnnOptionsFromJson(KnnOptionsJson(o));
  EXPECT_EQ(back.kind, o.kind);
  EXPECT_EQ(back.k, 7u);
  EXPECT_EQ(back.sample_size, 33u);
  EXPECT_EQ(back.idf_weighting, 1);
  EXPECT_EQ(back.position_decay, 4);
}

TEST(ModelHostTest, BlendWithARerankerServesItsOrder) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  RegisterKnn(*reg, "ma", "a", tmp.path());
  RegisterKnn(*reg, "mb", "b", tmp.path());
  const std::vector<BlendMember> members{{"ma", 1, 0}, {"mb", 1, 0}};
  const std::vector<std::string> window{"q"};
  // The members' lists as the blend gets them; equal shares put a0 first (ties by id). A
  // re-ranker taught that the shopper always takes b3 must serve b3 first.
  std::vector<std::vector<models::ScoredItem>> lists;
  std::vector<models::ScoreScale> scales;
  for (const auto& member : members) {
    auto model = LoadRecommender(*reg, *reg->Show(member.name, 1), member.name);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    lists.push_back((*model)->Recommend("t", "u", window, models::kBlendDepth).items);
    scales.push_back(models::ScoreScale::kSimilarity);
  }
  const auto candidates = models::RerankFeatures(lists, scales, {}, window, 10);
  ASSERT_EQ(candidates.items[0].item_id, "a0");
  const std::vector<models::RerankCandidates> groups(50, candidates);
  const std::vector<std::string> targets(50, "b3");
  auto reranker = models::Reranker::Train(groups, targets, {.rounds = 10, .threads = 1});
  ASSERT_TRUE(reranker.ok()) << reranker.status().ToString();
  ASSERT_TRUE(reranker->Save(tmp.Sub("rerank.json")).ok());

  Manifest blend;
  blend.name = "blend";
  blend.type = ModelType::kBlend;
  blend.options_json = BlendOptionsJson(members, /*rerank=*/true);
  EXPECT_TRUE(BlendHasReranker(blend.options_json));
  ASSERT_TRUE(
      reg->Register(blend, std::vector<Artifact>{{kRerankArtifact, tmp.Sub("rerank.json"), ""}})
          .ok());
  ASSERT_TRUE(reg->Promote("blend", 1).ok());
  auto host = ModelHost::Open(*reg, "blend", {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  auto served = (*host)->Recommend("t", "u", window, 3);
  EXPECT_EQ(served.model, "blend@v1");
  ASSERT_EQ(served.items.size(), 3u);
  EXPECT_EQ(served.items[0].item_id, "b3");
  EXPECT_EQ(served.items, reranker->Rerank(candidates, 3));

  // Options that promise a re-ranker without its file do not load.
  ASSERT_TRUE(reg->Register(blend, {}).ok());
  EXPECT_FALSE(LoadRecommender(*reg, *reg->Show("blend", 2), "blend").ok());
}

TEST(BlendOptionsTest, WeightsRoundTripAndBadOnesAreNamed) {
  const std::vector<BlendMember> members{{"a", 1, 0.3}, {"b", 2, 0.7}};
  auto back = BlendMembersFromJson(BlendOptionsJson(members));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].name, "b");
  EXPECT_EQ((*back)[1].version, 2);
  EXPECT_DOUBLE_EQ((*back)[1].weight, 0.7);
  auto equal = BlendMembersFromJson(R"({"members": [{"name": "a", "version": 1},
                                                    {"name": "b", "version": 2}]})");
  ASSERT_TRUE(equal.ok());
  EXPECT_EQ((*equal)[0].weight, 0);  // equal shares
  for (
      const char* bad : {
          R"({"members": [{"name": "a", "version": 1, "weight": 0.5}, {"name": "b", "version": 2}]})",
          R"({"members": [{"name": "a", "version": 1, "weight": -1}, {"name": "b", "version": 2, "weight": 1}]})",
          R"({"members": [{"name": "a", "version": 1, "weight": "x"}, {"name": "b", "version": 2, "weight": 1}]})",
      }) {
    auto parsed = BlendMembersFromJson(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().field, "members") << bad;
  }
}

}  // namespace
}  // namespace streamrec::registry
