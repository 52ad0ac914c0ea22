#include "registry/train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "models/eval.h"
#include "registry/model_host.h"
#include "support/datasets.h"
#include "support/temp_dir.h"

namespace streamrec::registry {
namespace {

namespace fs = std::filesystem;
using streamrec::testing::TempDir;

// `model` on the newest `sessions` Diginetica training sessions, scored on `cases` test cases;
// nullopt when the shared datasets are absent.
std::optional<TrainRequest> DigineticaSlice(const std::string& model, size_t sessions,
                                            size_t cases) {
  auto train = streamrec::testing::DatasetPath("diginetica-srgnn/train_sessions.txt.gz");
  if (!train) return std::nullopt;
  TrainRequest req;
  req.model = model;
  req.dataset = "diginetica";
  req.datasets_dir = fs::path(*train).parent_path().parent_path().string();
  req.max_sessions = sessions;
  req.max_test = cases;
  req.progress = false;
  return req;
}

TEST(TrainTest, VsknnOnDigineticaSliceRegistersCandidate) {
  auto slice = DigineticaSlice("vsknn", 20'000, 2'000);
  if (!slice) GTEST_SKIP() << "shared datasets not present";
  TrainRequest req = *slice;
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  req.select = true;  // chosen on the newest 10% of the training sessions, recorded
  auto out = TrainAndRegister(*reg, req);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->version, 1);
  const Manifest& m = out->manifest;
  EXPECT_EQ(m.name, "vsknn-diginetica");
  EXPECT_EQ(m.type, ModelType::kVsknn);
  EXPECT_EQ(m.stage, Stage::kCandidate);
  EXPECT_EQ(m.training_data.sequences, 20'000u);
  EXPECT_EQ(m.training_data.sha256.size(), 64u);
  EXPECT_GT(m.training_data.items, 1000u);
  auto metrics = boost::json::parse(m.metrics_json).as_object();
  EXPECT_EQ(metrics.at("cases").as_int64(), 2000);
  EXPECT_EQ(metrics.at("protocol").as_string(), "session");
  const double hr20 = metrics.at("HR@20").to_number<double>();
  std::printf("vsknn diginetica 20k sessions: HR@20 %.4f MRR@20 %.4f\n", hr20,
              metrics.at("MRR@20").to_number<double>());
  // A 20k slice covers a fraction of the test items; the full data gives ~0.50.
  EXPECT_GT(hr20, 0.10);
  EXPECT_LT(hr20, 0.70);
  EXPECT_TRUE(fs::exists(reg->VersionDir(m.name, 1) + "/knn.bin"));

  const auto chosen = KnnOptionsFromJson(m.options_json);
  EXPECT_TRUE(chosen.idf_weighting == 0.0 || chosen.idf_weighting == 1.0) << m.options_json;
  EXPECT_NE(std::find(std::begin(models::kSelectPositionDecays),
                      std::end(models::kSelectPositionDecays), chosen.position_decay),
            std::end(models::kSelectPositionDecays))
      << m.options_json;
  req.model = "sknn";  // --select chooses V-SKNN's setting only
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "select");
  req.select = false;
  req.rerank = true;  // a blend's only
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "rerank");
  req.rerank = false;

  // The registered artifact serves online with the trained options.
  ASSERT_TRUE(reg->Promote(m.name, 1).ok());
  auto host = ModelHost::Open(*reg, m.name, {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_EQ((*host)->version(), 1);
}

TEST(TrainTest, OwnSessionFileAndBadInput) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  {
    std::ofstream out(tmp.Sub("sessions.txt"));
    for (int s = 0; s < 200; ++s) out << "a" << s % 7 << " b" << s % 5 << " c" << s % 3 << "\n";
  }
  TrainRequest req;
  req.model = "covis";
  req.data_path = tmp.Sub("sessions.txt");
  req.name = "covis-own";
  req.progress = false;
  auto out = TrainAndRegister(*reg, req);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->manifest.training_data.sequences, 180u);  // the newest 10% are the test
  EXPECT_GT(fs::file_size(reg->VersionDir("covis-own", 1) + "/covis.bin"), 0u);

  req.model = "gbdt";
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "model");
  req.model = "vsknn";
  req.data_path = tmp.Sub("missing.txt");
  EXPECT_FALSE(TrainAndRegister(*reg, req).ok());
  EXPECT_EQ(reg->List()->size(), 1u);
}

// SASRec end to end on a tiny synthetic file: 2 epochs, registered with its curve, served online.
TEST(TrainTest, SasrecTinyTrainsRegistersAndServes) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  {
    std::ofstream out(tmp.Sub("users.txt"));
    for (int u = 0; u < 300; ++u) {
      out << u + 1;
      for (int k = 0; k < 8; ++k) out << " " << 1 + (u + k) % 40;
      out << "\n";
    }
  }
  TrainRequest req;
  req.model = "sasrec";
  req.data_path = tmp.Sub("users.txt");
  req.name = "sasrec-tiny";
  req.epochs = 2;
  req.progress = false;
  auto out = TrainAndRegister(*reg, req);
  if (out.status().code == common::Code::kUnavailable) GTEST_SKIP() << "built without LibTorch";
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const std::string dir = reg->VersionDir("sasrec-tiny", out->version);
  for (const char* f : {"model.pt", "vocab.txt", "curve.csv", "curve.svg"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
  EXPECT_EQ(out->manifest.vocabulary, "vocab.txt");
  auto metrics = boost::json::parse(out->manifest.metrics_json).as_object();
  EXPECT_EQ(metrics.at("protocol").as_string(), "leave-one-out");
  ASSERT_TRUE(reg->Promote("sasrec-tiny", out->version).ok());
  auto host = ModelHost::Open(*reg, "sasrec-tiny", {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  std::vector<std::string> window{"3", "4", "5"};
  auto rec = (*host)->Recommend("t", "u", window, 10);
  EXPECT_EQ(rec.items.size(), 10u);
  EXPECT_EQ(rec.model, "sasrec-tiny@v1");
  std::vector<std::string> unknown{"no-such-item"};
  EXPECT_TRUE((*host)->Recommend("t", "u", unknown, 10).items.empty());
  // The pipeline asks for a step's users at once: one forward pass, the same lists.
  const std::vector<std::vector<std::string>> windows{
      {"3", "4", "5"}, {"no-such-item"}, {"7"}, {"1", "2", "3", "4", "5", "6", "7", "8", "9"}};
  std::vector<models::RecommendRequest> requests;
  for (size_t i = 0; i < windows.size(); ++i) requests.push_back({"t", "u", windows[i], 3 + i});
  auto batch = (*host)->RecommendBatch(requests);
  ASSERT_EQ(batch.size(), windows.size());
  for (size_t i = 0; i < windows.size(); ++i) {
    auto single = (*host)->Recommend("t", "u", windows[i], 3 + i);
    ASSERT_EQ(batch[i].items.size(), single.items.size()) << i;
    for (size_t k = 0; k < single.items.size(); ++k) {
      EXPECT_EQ(batch[i].items[k].item_id, single.items[k].item_id) << i;
      EXPECT_NEAR(batch[i].items[k].score, single.items[k].score, 1e-4) << i;
    }
  }
  EXPECT_TRUE(batch[1].items.empty());
}

// SASRec on Diginetica sessions, tested with the session protocol (every test prefix predicts
// its next item, prefix items not masked), beats popularity on the same slice and serves.
TEST(TrainTest, SasrecOnDigineticaSessionsUsesTheSessionProtocol) {
  auto slice = DigineticaSlice("sasrec", 4'000, 1'000);
  if (!slice) GTEST_SKIP() << "shared datasets not present";
  TrainRequest req = *slice;
  req.epochs = 2;
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  auto out = TrainAndRegister(*reg, req);
  if (out.status().code == common::Code::kUnavailable) GTEST_SKIP() << "built without LibTorch";
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Manifest& m = out->manifest;
  EXPECT_EQ(m.training_data.sequences, 4'000u);
  auto metrics = boost::json::parse(m.metrics_json).as_object();
  EXPECT_EQ(metrics.at("protocol").as_string(), "session");
  EXPECT_EQ(metrics.at("cases").as_int64(), 1000);
  EXPECT_GT(metrics.at("validation").as_object().at("users").as_int64(), 500);
  const double hr20 = metrics.at("HR@20").to_number<double>();
  const double pop_hr20 = metrics.at("popularity").as_object().at("HR@20").to_number<double>();
  std::printf("sasrec diginetica 4k sessions: HR@20 %.4f (popularity %.4f)\n", hr20, pop_hr20);
  EXPECT_GT(hr20, pop_hr20);
  EXPECT_GE(metrics.at("HR@20").to_number<double>(), metrics.at("HR@10").to_number<double>());
  EXPECT_GT(metrics.at("MRR@20").to_number<double>(), 0);

  // The vocabulary maps the model's rows back to Diginetica's item ids, which it serves.
  ASSERT_TRUE(reg->Promote(m.name, out->version).ok());
  auto host = ModelHost::Open(*reg, m.name, {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  std::ifstream vocab(reg->VersionDir(m.name, out->version) + "/vocab.txt");
  std::string first, second;
  ASSERT_TRUE(vocab >> first >> second);
  std::vector<std::string> window{first, second};
  auto rec = (*host)->Recommend("t", "u", window, 10);
  ASSERT_EQ(rec.items.size(), 10u);
  for (const auto& item : rec.items) EXPECT_FALSE(item.item_id.empty());

  // A blend of it and V-SKNN on the same slice: scored on the same cases, served from its
  // members' versions.
  req.model = "vsknn";
  auto knn = TrainAndRegister(*reg, req);
  ASSERT_TRUE(knn.ok()) << knn.status().ToString();
  req.model = "blend";
  req.members = {"sasrec-diginetica", "vsknn-diginetica@1"};
  req.name = "blend-diginetica";
  auto blend = TrainAndRegister(*reg, req);
  ASSERT_TRUE(blend.ok()) << blend.status().ToString();
  EXPECT_EQ(blend->manifest.type, ModelType::kBlend);
  auto members = BlendMembersFromJson(blend->manifest.options_json);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].name, "sasrec-diginetica");
  EXPECT_EQ((*members)[0].version, 1);  // its production version
  auto blended = boost::json::parse(blend->manifest.metrics_json).as_object();
  EXPECT_EQ(blended.at("protocol").as_string(), "session");
  EXPECT_EQ(blended.at("cases").as_int64(), 1000);
  const double knn_hr20 =
      boost::json::parse(knn->manifest.metrics_json).at("HR@20").to_number<double>();
  const double blend_hr20 = blended.at("HR@20").to_number<double>();
  std::printf("blend HR@20 %.4f (sasrec %.4f, vsknn %.4f)\n", blend_hr20, hr20, knn_hr20);
  EXPECT_GE(blend_hr20, std::min(hr20, knn_hr20));

  ASSERT_TRUE(reg->Promote("blend-diginetica", blend->version).ok());
  auto blend_host = ModelHost::Open(*reg, "blend-diginetica", {.poll_ms = 0});
  ASSERT_TRUE(blend_host.ok()) << blend_host.status().ToString();
  auto served = (*blend_host)->Recommend("t", "u", window, 10);
  EXPECT_EQ(served.model, "blend-diginetica@v1");
  ASSERT_EQ(served.items.size(), 10u);
  for (const auto& item : served.items) {
    EXPECT_NE(item.item_id, first);  // served lists leave the window's items out
    EXPECT_NE(item.item_id, second);
  }
  std::vector<std::string> cold{"no-such-item"};
  EXPECT_TRUE((*blend_host)->Recommend("t", "u", cold, 10).items.empty());

  // --select: the weights come from the sessions SASRec held out (V-SKNN refit without them),
  // recorded with every candidate tried, and serve.
  req.select = true;
  auto weighted = TrainAndRegister(*reg, req);
  ASSERT_TRUE(weighted.ok()) << weighted.status().ToString();
  auto chosen = BlendMembersFromJson(weighted->manifest.options_json);
  ASSERT_TRUE(chosen.ok());
  EXPECT_GT((*chosen)[0].weight, 0);
  EXPECT_NEAR((*chosen)[0].weight + (*chosen)[1].weight, 1.0, 1e-9);
  auto selection = boost::json::parse(weighted->manifest.metrics_json).at("selection").as_object();
  EXPECT_EQ(selection.at("criterion").as_string(), "NDCG@20");
  EXPECT_GT(selection.at("cases").as_int64(), 300);        // the prefixes of 200 sessions
  EXPECT_EQ(selection.at("tried").as_array().size(), 9u);  // equal, then .1/.9 .. .9/.1 but .5/.5
  ASSERT_TRUE(reg->Promote("blend-diginetica", weighted->version).ok());
  ASSERT_TRUE((*blend_host)->Reload().ok());
  EXPECT_EQ((*blend_host)->Recommend("t", "u", window, 10).items.size(), 10u);

  // --rerank: the same held-out sessions teach a re-ranker of the blend's head, checked 2-fold
  // there first and kept with the version only when it ranks better; scored on the test cases
  // and served with the blend.
  req.rerank = true;
  auto reranked = TrainAndRegister(*reg, req);
  ASSERT_TRUE(reranked.ok()) << reranked.status().ToString();
  auto rerank_metrics = boost::json::parse(reranked->manifest.metrics_json).as_object();
  const auto& rerank = rerank_metrics.at("rerank").as_object();
  const auto& two_fold = rerank.at("two_fold").as_object();
  const double blend_ndcg = two_fold.at("blend").at("NDCG@20").to_number<double>();
  const double reranked_ndcg = two_fold.at("reranked").at("NDCG@20").to_number<double>();
  std::printf(
      "validation NDCG@20 %.4f, re-ranked %.4f; test HR@20 %.4f (equal weights), --rerank run "
      "%.4f\n",
      blend_ndcg, reranked_ndcg, blend_hr20, rerank_metrics.at("HR@20").to_number<double>());
  const bool kept = rerank.at("kept").as_bool();
  EXPECT_EQ(kept, reranked_ndcg > blend_ndcg);
  EXPECT_EQ(BlendHasReranker(reranked->manifest.options_json), kept);
  EXPECT_EQ(std::find(reranked->manifest.artifacts.begin(), reranked->manifest.artifacts.end(),
                      kRerankArtifact) != reranked->manifest.artifacts.end(),
            kept);
  // (On this 4k-session slice, 200 validation sessions, it is not: the blend stays as it was.)
  EXPECT_GT(rerank.at("cases_with_target").as_int64(), 100);  // next click among the 30
  EXPECT_EQ(rerank_metrics.at("cases").as_int64(), 1000);
  ASSERT_TRUE(reg->Promote("blend-diginetica", reranked->version).ok());
  ASSERT_TRUE((*blend_host)->Reload().ok());
  auto reranked_served = (*blend_host)->Recommend("t", "u", window, 10);
  ASSERT_EQ(reranked_served.items.size(), 10u);
  for (const auto& item : reranked_served.items) {
    EXPECT_NE(item.item_id, first);  // still without the window's items
    EXPECT_NE(item.item_id, second);
  }
  req.rerank = false;
  // A sequential member that did not hold out these sessions cannot be validated.
  req.max_sessions = 3'000;
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.max_sessions = 4'000;
  req.select = false;

  // Bad members are named.
  req.members = {"sasrec-diginetica"};
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.members = {"sasrec-diginetica", "nope"};
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.members = {"sasrec-diginetica", "sasrec-diginetica@1"};  // the same version twice
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.members = {"sasrec-diginetica", "vsknn-diginetica@0"};
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.members = {"sasrec-diginetica", "vsknn-diginetica@x"};
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.members = {"sasrec-diginetica", "blend-diginetica"};
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.members = {"sasrec-diginetica", "vsknn-diginetica"};
  req.dataset = "yoochoose";  // members trained on other data rank other items
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
  req.dataset = "beauty";
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "dataset");
  req.model = "vsknn";  // --members belongs to blends
  EXPECT_EQ(TrainAndRegister(*reg, req).status().field, "members");
}

// SLi-Rec-style model on a RecBole .inter file: string item ids and timestamps.
TEST(TrainTest, SlirecOnTimedRecboleFileTrainsRegistersAndServes) {
  TempDir tmp;
  auto reg = Registry::Open(tmp.Sub("models"));
  {
    std::ofstream out(tmp.Sub("events.inter"));
    out << "user_id:token\titem_id:token\ttimestamp:float\n";
    for (int u = 0; u < 300; ++u) {
      for (int k = 0; k < 8; ++k) {
        out << "u" << u << "\titem-" << (u + k) % 40 << "\t" << 1000 + 60 * k + (k % 2) * 86400
            << "\n";
      }
    }
  }
  TrainRequest req;
  req.model = "slirec";
  req.data_path = tmp.Sub("events.inter");
  req.name = "slirec-tiny";
  req.epochs = 2;
  req.threads = 1;
  req.progress = false;
  auto out = TrainAndRegister(*reg, req);
  if (out.status().code == common::Code::kUnavailable) GTEST_SKIP() << "built without LibTorch";
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->manifest.type, ModelType::kSlirec);
  auto options = boost::json::parse(out->manifest.options_json).as_object();
  EXPECT_EQ(options.at("arch").as_string(), "slirec");
  EXPECT_EQ(options.at("timestamps").as_bool(), true);
  auto metrics = boost::json::parse(out->manifest.metrics_json).as_object();
  EXPECT_TRUE(metrics.contains("popularity"));
  EXPECT_EQ(out->manifest.training_data.items, 40u);
  ASSERT_TRUE(reg->Promote("slirec-tiny", out->version).ok());
  auto host = ModelHost::Open(*reg, "slirec-tiny", {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  std::vector<std::string> window{"item-3", "item-4", "no-such-item"};
  auto rec = (*host)->Recommend("t", "u", window, 10);
  ASSERT_EQ(rec.items.size(), 10u);
  EXPECT_EQ(rec.model, "slirec-tiny@v1");
  for (const auto& item : rec.items) {
    EXPECT_EQ(item.item_id.rfind("item-", 0), 0u) << item.item_id;
    EXPECT_NE(item.item_id, "item-3");
    EXPECT_NE(item.item_id, "item-4");
  }
}

TEST(TrainTest, CurveSvgIsWellFormed) {
  std::string svg = CurveSvg({{1, 9.5, 0.01}, {2, 8.1, 0.03}, {3, 7.7, 0.04}}, "t");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace streamrec::registry
