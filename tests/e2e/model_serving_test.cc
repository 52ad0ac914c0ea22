// A model trained offline into the registry computes the served lists once promoted.
#include <cstdio>

#include "e2e_fixture.h"
#include "support/datasets.h"

namespace streamrec::e2e {
namespace {

using ModelServingE2eTest = E2eTest;

std::string RunCommand(const std::string& cmd, int* rc) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  *rc = pclose(p);
  return out;
}

TEST_F(ModelServingE2eTest, PromotedVsknnServesListsWithCovisitationFallback) {
  auto datasets = testing::DatasetPath("diginetica-srgnn/train_sessions.txt.gz");
  if (!datasets) GTEST_SKIP() << "shared datasets absent";
  std::string root = datasets->substr(0, datasets->rfind("/diginetica-srgnn"));
  std::string registry = dir_.Sub("models");
  int rc = 0;
  std::string out = RunCommand(std::string(STREAMREC_BINARY) +
                                   " train --model vsknn --name vsknn --dataset diginetica --data-dir " + root +
                                   " --max-sessions 20000 --max-test 500 --quiet --registry " +
                                   registry,
                               &rc);
  ASSERT_EQ(rc, 0) << out;
  out = RunCommand(std::string(STREAMREC_BINARY) + " models promote --registry " + registry +
                       " --name vsknn --version 1",
                   &rc);
  ASSERT_EQ(rc, 0) << out;

  StartServer("models:\n  serve_model: vsknn\n  registry: " + registry + "\n");
  // A real Diginetica session prefix (items the model was trained on).
  json::array batch;
  const char* items[] = {"1", "2", "3"};
  for (int i = 0; i < 3; ++i) {
    batch.push_back(PageView("cccccccc-0000-4000-8000-00000000000" + std::to_string(i),
                             "model-user", items[i], 1'700'000'000'000 + i * 1000, "default"));
  }
  ASSERT_EQ(Post(kTp2Path, Tp2Body(batch)).status, 200);
  ASSERT_TRUE(WaitProcessed(3));
  auto recs = Json(Get("/v1/recommendations?user_id=model-user&n=5"));
  std::string model(recs.at("model").as_string());
  EXPECT_NE(model.find("vsknn"), std::string::npos) << json::serialize(recs);
  EXPECT_EQ(recs.at("items").as_array().size(), 5u);
  // A cold user falls back to popularity.
  auto cold = Json(Get("/v1/recommendations?user_id=nobody&n=5"));
  EXPECT_EQ(cold.at("model").as_string(), "popularity");
}

}  // namespace
}  // namespace streamrec::e2e
