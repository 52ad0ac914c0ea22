#include "registry/registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "registry/manifest.h"
#include "support/temp_dir.h"

namespace streamrec::registry {
namespace {

namespace fs = std::filesystem;
using streamrec::testing::TempDir;

Manifest Candidate(const std::string& name) {
  Manifest m;
  m.name = name;
  m.type = ModelType::kVsknn;
  m.metrics_json = R"({"HR@20":0.5})";  // compact: the stored form
  m.options_json = R"({"k":100})";
  m.training_data = {"/data/train.txt", "abc", 10, 100, 42};
  return m;
}

std::vector<Artifact> Files(const std::string& contents) { return {{"knn.bin", "", contents}}; }

TEST(ManifestTest, RoundTrip) {
  Manifest m = Candidate("vsknn-digi");
  m.version = 7;
  m.type = ModelType::kSasrec;
  m.vocabulary = "vocab.txt";
  m.artifacts = {"model.pt", "vocab.txt"};
  m.created_ms = 123;
  m.stage = Stage::kArchived;
  m.history = {{"", "candidate", 1, "register"}, {"candidate", "production", 2, "promote"}};
  m.metrics_json = R"({"HR@20":0.5,"nested":{"a":[1,2]}})";
  auto back = ManifestFromJson(ManifestToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, m);
}

TEST(ManifestTest, RejectsNamedFields) {
  auto bad = ManifestFromJson(R"({"name":"x","version":"1","type":"vsknn","stage":"candidate"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field, "version");
  auto type = ManifestFromJson(R"({"name":"x","version":1,"type":"gbdt","stage":"candidate"})");
  EXPECT_EQ(type.status().field, "type");
  auto sig = ParseFields(R"([{"name":"items"}])");
  EXPECT_EQ(sig.status().field, "signature[0]");
}

TEST(RegistryTest, RegisterListPromoteRollbackPersist) {
  TempDir tmp;
  {
    auto reg = Registry::Open(tmp.Sub("models"));
    ASSERT_TRUE(reg.ok());
    for (int i = 1; i <= 3; ++i) {
      auto v = reg->Register(Candidate("m"), Files("v" + std::to_string(i)));
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ(*v, i);
    }
    ASSERT_TRUE(reg->Register(Candidate("other"), Files("x")).ok());
    EXPECT_EQ(reg->ProductionVersion("m").value(), 0);
    EXPECT_EQ(reg->Production("m").status().code, common::Code::kNotFound);
    ASSERT_TRUE(reg->Promote("m", 1).ok());
    ASSERT_TRUE(reg->Promote("m", 3).ok());
    EXPECT_EQ(reg->Promote("m", 9).code, common::Code::kNotFound);
  }
  // A fresh Registry over the same folder sees everything.
  auto reg = Registry::Open(tmp.Sub("models"));
  auto all = reg->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].name, "m");
  EXPECT_EQ((*all)[3].name, "other");
  EXPECT_EQ(reg->Production("m")->version, 3);
  EXPECT_EQ(reg->Show("m", 1)->stage, Stage::kArchived);
  EXPECT_EQ(reg->Show("m", 2)->stage, Stage::kCandidate);
  EXPECT_EQ(reg->Show("m", 3)->stage, Stage::kProduction);
  EXPECT_EQ(reg->Show("m")->version, 3);  // latest
  std::ifstream artifact(reg->VersionDir("m", 2) + "/knn.bin");
  std::string contents((std::istreambuf_iterator<char>(artifact)), {});
  EXPECT_EQ(contents, "v2");

  auto back = reg->Rollback("m");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, 1);
  EXPECT_EQ(reg->ProductionVersion("m").value(), 1);
  auto v3 = reg->Show("m", 3);
  EXPECT_EQ(v3->stage, Stage::kArchived);
  ASSERT_EQ(v3->history.size(), 3u);
  EXPECT_EQ(v3->history[2].reason, "rollback");
  auto v1 = reg->Show("m", 1);
  EXPECT_EQ(v1->stage, Stage::kProduction);
  EXPECT_EQ(v1->history.back().to, "production");
  // Nothing earlier than v1 was production.
  EXPECT_EQ(reg->Rollback("m").status().reason, "no_previous_production");
  EXPECT_EQ(reg->Rollback("nope").status().code, common::Code::kNotFound);
}

TEST(RegistryTest, FailedRegisterLeavesNothing) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  std::vector<Artifact> files{{"a.bin", "", "ok"}, {"b.bin", tmp.Sub("missing.bin"), ""}};
  auto v = reg->Register(Candidate("m"), files);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().field, "artifacts");
  Manifest bad_metrics = Candidate("m");
  bad_metrics.metrics_json = "[1,";
  EXPECT_EQ(reg->Register(bad_metrics, Files("x")).status().field, "metrics");
  EXPECT_EQ(reg->Register(Candidate("../evil"), Files("x")).status().field, "name");
  EXPECT_EQ(reg->Register(Candidate("m"), std::vector<Artifact>{{"manifest.json", "", ""}})
                .status()
                .field,
            "artifacts");
  EXPECT_TRUE(reg->List()->empty());
  // No model folder, no half-written version in staging.
  for (const auto& e : fs::recursive_directory_iterator(tmp.Sub("models"))) {
    EXPECT_TRUE(e.is_directory()) << e.path();
    EXPECT_EQ(e.path().filename(), ".staging") << e.path();
  }
  // The next good register is version 1.
  EXPECT_EQ(reg->Register(Candidate("m"), Files("x")).value(), 1);
}

TEST(RegistryTest, ConcurrentRegistersGetDistinctVersions) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  std::vector<std::thread> threads;
  std::vector<int64_t> versions(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back(
        [&, t] { versions[t] = reg->Register(Candidate("m"), Files("x")).value(); });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> distinct(versions.begin(), versions.end());
  EXPECT_EQ(distinct.size(), 8u);
  EXPECT_EQ(*distinct.rbegin(), 8);
}

TEST(RegistryTest, ImportTorchscript) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  std::ofstream(tmp.Sub("vocab.txt")) << "i1\ni2\ni3\n";
  std::ofstream(tmp.Sub("not_a_module.pt")) << "hello";
  auto bad = ImportTorchscript(*reg, "mine", tmp.Sub("not_a_module.pt"), tmp.Sub("vocab.txt"),
                               R"([{"name":"items","type":"list<string>"}])");
  EXPECT_EQ(bad.status().field, "torchscript");
  std::ofstream(tmp.Sub("module.pt"), std::ios::binary) << std::string("PK\x03\x04rest", 8);
  EXPECT_EQ(ImportTorchscript(*reg, "mine", tmp.Sub("module.pt"), tmp.Sub("vocab.txt"), "{")
                .status()
                .field,
            "signature");
  auto v = ImportTorchscript(
      *reg, "mine", tmp.Sub("module.pt"), tmp.Sub("vocab.txt"),
      R"({"inputs":[{"name":"items","type":"list<string>"}],"outputs":[{"name":"scores","type":"list<float>"}]})");
#ifdef STREAMREC_HAVE_TORCH
  // With LibTorch the module is loaded and called at import: a zip that is no module is
  // refused, and nothing is registered (a real module: torchscript_serving_test.cc).
  EXPECT_EQ(v.status().reason, "invalid_torchscript");
  EXPECT_FALSE(reg->Show("mine", 1).ok());
  return;
#endif
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  auto m = reg->Show("mine", *v);
  EXPECT_EQ(m->type, ModelType::kTorchscript);
  EXPECT_EQ(m->vocabulary, "vocab.txt");
  EXPECT_EQ(m->training_data.items, 3u);
  ASSERT_EQ(m->inputs.size(), 1u);
  EXPECT_EQ(m->inputs[0].name, "items");
  EXPECT_EQ(m->outputs, (std::vector<Field>{{"scores", "list<float>"}}));
  EXPECT_TRUE(fs::exists(reg->VersionDir("mine", *v) + "/model.pt"));
}

TEST(RegistryTest, Sha256) {
  TempDir tmp;
  std::ofstream(tmp.Sub("abc")) << "abc";
  EXPECT_EQ(Sha256File(tmp.Sub("abc")).value(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace streamrec::registry
