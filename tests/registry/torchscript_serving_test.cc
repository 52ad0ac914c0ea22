// A user's TorchScript module, built here with the LibTorch API (as torch.jit.save would
// write it), imported into a registry, promoted and served by ModelHost.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <numeric>

#include "registry/model_host.h"
#include "support/temp_dir.h"

#ifdef STREAMREC_HAVE_TORCH
#include <torch/script.h>
#endif

namespace streamrec::registry {
namespace {

using streamrec::testing::TempDir;

#ifdef STREAMREC_HAVE_TORCH
constexpr int64_t kItems = 10;
constexpr const char* kItemsOnly = R"([{"name":"items","type":"list<string>"}])";

// scores = bias + next[last item]: what to recommend depends on the last item of the window.
struct Weights {
  torch::Tensor bias = torch::rand({kItems});
  torch::Tensor next = torch::rand({kItems, kItems});
};

std::string SaveModule(const std::string& path, const Weights& w, const std::string& code) {
  torch::jit::Module m("m");
  m.register_parameter("bias", w.bias, /*is_buffer=*/false);
  m.register_parameter("next", w.next, /*is_buffer=*/false);
  m.define(code);
  m.save(path);
  return path;
}

const char* kForward = R"(
def forward(self, items):
    return self.bias + self.next[items[-1]]
)";

struct Fixture {
  TempDir tmp;
  Registry reg = Registry::Open(tmp.Sub("models")).value();
  Weights weights;
  std::string vocab = tmp.Sub("vocab.txt");
  Fixture() {
    torch::manual_seed(5);
    weights = Weights();
    std::ofstream out(vocab);
    for (int64_t i = 0; i < kItems; ++i) out << "item-" << i << "\n";
  }
};

// The n best vocabulary indices of `scores` without `history`, best first.
std::vector<std::pair<std::string, float>> Expected(const torch::Tensor& scores,
                                                    std::vector<int64_t> history, size_t n) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < kItems; ++i) {
    if (std::find(history.begin(), history.end(), i) == history.end()) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return scores[a].item<float>() > scores[b].item<float>();
  });
  order.resize(std::min(n, order.size()));
  std::vector<std::pair<std::string, float>> out;
  for (int64_t i : order) out.emplace_back("item-" + std::to_string(i), scores[i].item<float>());
  return out;
}

std::vector<std::pair<std::string, float>> Served(const models::RecommenderOutput& out) {
  std::vector<std::pair<std::string, float>> items;
  for (const auto& item : out.items) items.emplace_back(item.item_id, item.score);
  return items;
}

TEST(TorchscriptServingTest, ServesWhatTheModuleScoresWithHistoryMasked) {
  Fixture s;
  const auto module = SaveModule(s.tmp.Sub("module.pt"), s.weights, kForward);
  auto v = ImportTorchscript(s.reg, "mine", module, s.vocab, kItemsOnly);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_TRUE(s.reg.Promote("mine", *v).ok());
  auto host = ModelHost::Open(s.reg, "mine", {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();

  // Unknown items are skipped; the last known item (7) drives the scores; 3 and 7 are masked.
  const std::vector<std::string> window{"item-3", "never-seen", "item-7"};
  auto out = (*host)->Recommend("t", "u1", window, 4);
  EXPECT_EQ(out.model, "mine@v1");
  const auto want = Expected(s.weights.bias + s.weights.next[7], {3, 7}, 4);
  const auto got = Served(out);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first) << i;
    EXPECT_FLOAT_EQ(got[i].second, want[i].second) << i;
  }
  // Asking for more than there is: every unmasked item once.
  EXPECT_EQ((*host)->Recommend("t", "u1", window, 100).items.size(), size_t(kItems - 2));
  // Cold users (no known item): nothing, so the pipeline falls back to co-visitation.
  const std::vector<std::string> cold{"never-seen"};
  EXPECT_TRUE((*host)->Recommend("t", "u1", cold, 4).items.empty());
  EXPECT_TRUE((*host)->Recommend("t", "u1", {}, 4).items.empty());
}

TEST(TorchscriptServingTest, PassesUserIdAndTimestampsInTheDeclaredOrder) {
  Fixture s;
  // Reverses the ranking for one user, and checks that unknown times arrive as -1.
  const auto module = SaveModule(s.tmp.Sub("module.pt"), s.weights, R"(
def forward(self, user_id: str, items, timestamps):
    scores = self.bias + self.next[items[-1]]
    if bool((timestamps != -1).any()):
        scores = scores * 0.0
    if user_id == "vip":
        return -scores
    return scores
)");
  auto v = ImportTorchscript(s.reg, "mine", module, s.vocab,
                             R"([{"name":"user_id","type":"string"},
                                 {"name":"items","type":"list<string>"},
                                 {"name":"timestamps","type":"list<int64>"}])");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_TRUE(s.reg.Promote("mine", *v).ok());
  auto host = ModelHost::Open(s.reg, "mine", {.poll_ms = 0});
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  const std::vector<std::string> window{"item-2"};
  const auto scores = s.weights.bias + s.weights.next[2];
  EXPECT_EQ(Served((*host)->Recommend("t", "u1", window, 3)), Expected(scores, {2}, 3));
  EXPECT_EQ(Served((*host)->Recommend("t", "vip", window, 3)), Expected(-scores, {2}, 3));
}

TEST(TorchscriptServingTest, BrokenModulesAreRefusedAtImport) {
  Fixture s;
  // One score too many.
  auto wrong =
      ImportTorchscript(s.reg, "bad",
                        SaveModule(s.tmp.Sub("wrong.pt"), s.weights,
                                   "def forward(self, items):\n    return torch.zeros(11)\n"),
                        s.vocab, kItemsOnly);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().reason, "invalid_torchscript");
  EXPECT_EQ(wrong.status().field, "torchscript");
  EXPECT_NE(wrong.status().message.find("10 scores"), std::string::npos) << wrong.status().message;
  EXPECT_NE(wrong.status().message.find("[11]"), std::string::npos) << wrong.status().message;

  // Not a tensor.
  auto tuple = ImportTorchscript(
      s.reg, "bad",
      SaveModule(s.tmp.Sub("tuple.pt"), s.weights,
                 "def forward(self, items):\n    return (self.bias, self.bias)\n"),
      s.vocab, kItemsOnly);
  EXPECT_EQ(tuple.status().reason, "invalid_torchscript");

  // forward takes two inputs, the signature declares one.
  auto arity =
      ImportTorchscript(s.reg, "bad",
                        SaveModule(s.tmp.Sub("arity.pt"), s.weights,
                                   "def forward(self, items, timestamps):\n    return self.bias\n"),
                        s.vocab, kItemsOnly);
  EXPECT_EQ(arity.status().reason, "invalid_torchscript");
  EXPECT_NE(arity.status().message.find("forward failed"), std::string::npos);

  // A signature outside the contract, and vocabularies that would shift indices.
  const auto good = SaveModule(s.tmp.Sub("good.pt"), s.weights, kForward);
  auto signature = ImportTorchscript(s.reg, "bad", good, s.vocab,
                                     R"([{"name":"items","type":"list<string>"},
                                         {"name":"price","type":"float"}])");
  EXPECT_EQ(signature.status().reason, "invalid_signature");
  EXPECT_NE(signature.status().message.find("price"), std::string::npos);
  std::ofstream(s.tmp.Sub("blank.txt")) << "a\n\nb\n";
  EXPECT_EQ(
      ImportTorchscript(s.reg, "bad", good, s.tmp.Sub("blank.txt"), kItemsOnly).status().reason,
      "invalid_vocabulary");
  std::ofstream(s.tmp.Sub("dup.txt")) << "a\nb\na\n";
  EXPECT_EQ(ImportTorchscript(s.reg, "bad", good, s.tmp.Sub("dup.txt"), kItemsOnly).status().field,
            "vocab");
  // Nothing was registered by the refused imports.
  EXPECT_FALSE(s.reg.Show("bad").ok());
}
#else
TEST(TorchscriptServingTest, NeedsLibTorch) { GTEST_SKIP() << "built without LibTorch"; }
#endif

}  // namespace
}  // namespace streamrec::registry
