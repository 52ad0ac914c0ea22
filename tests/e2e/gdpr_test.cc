// GDPR: export returns everything stored about a user; erase leaves nothing behind,
// checked by scanning every key and value of the store afterwards.
#include <rocksdb/db.h>

#include "e2e_fixture.h"
#include "events/event.h"
#include "store/store.h"

namespace streamrec::e2e {
namespace {

using GdprE2eTest = E2eTest;

//! Every key or value in any column family that contains `needle`.
std::vector<std::string> ScanStore(const std::string& dir, const std::string& needle) {
  auto store = store::Store::Open(dir, {});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  std::vector<std::string> hits;
  if (!store.ok()) return hits;
  for (int i = 0; i < static_cast<int>(store::Cf::kCount); ++i) {
    auto cf = static_cast<store::Cf>(i);
    std::unique_ptr<rocksdb::Iterator> it((*store)->db(cf)->NewIterator({}, (*store)->cf(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key = it->key().ToString(), value = it->value().ToString();
      if (key.find(needle) != std::string::npos || value.find(needle) != std::string::npos) {
        hits.push_back(std::string(store::CfName(cf)) + ": " + key);
      }
    }
  }
  return hits;
}

TEST_F(GdprE2eTest, ExportThenEraseLeavesNothingBehind) {
  StartServer();
  const std::string user = "gdpr-shopper-4711";
  json::array batch;
  for (int i = 0; i < 5; ++i) {
    batch.push_back(PageView("11111111-0000-4000-8000-00000000000" + std::to_string(i), user,
                             "item-" + std::to_string(i), 1'700'000'000'000 + i * 1000));
    batch.push_back(PageView("22222222-0000-4000-8000-00000000000" + std::to_string(i),
                             "other-shopper", "item-" + std::to_string(i),
                             1'700'000'000'000 + i * 1000));
  }
  ASSERT_EQ(Post(kTp2Path, Tp2Body(batch)).status, 200);
  // A rejected input that names the user lands in the bad rows.
  auto bad = PageView("not-used", user, "x", 1);
  bad.erase("eid");
  EXPECT_EQ(Post(kTp2Path, Tp2Body({bad})).status, 400);
  ASSERT_TRUE(WaitProcessed(10));

  EXPECT_EQ(Get("/v1/users/" + user + "/export?tenant=shop1").status, 401);
  auto exported = Json(AdminRequest("GET", "/v1/users/" + user + "/export?tenant=shop1"));
  EXPECT_EQ(exported.at("events").as_array().size(), 5u);
  EXPECT_EQ(exported.at("history").as_array().size(), 5u);
  EXPECT_TRUE(exported.as_object().contains("recommendations"));
  EXPECT_EQ(exported.at("bad_rows").as_array().size(), 1u);

  auto erased = client_->Request("DELETE", "/v1/users/" + user + "?tenant=shop1", {}, Admin());
  ASSERT_TRUE(erased.ok());
  ASSERT_EQ(erased->status, 200) << erased->body;
  auto body = Json(*erased);
  EXPECT_TRUE(body.at("verified").as_bool());
  EXPECT_EQ(body.at("erased").at("events").to_number<int64_t>(), 5);
  EXPECT_EQ(body.at("erased").at("bad_rows").to_number<int64_t>(), 1);

  EXPECT_EQ(Get("/v1/users/" + user + "/history?tenant=shop1").status, 404);
  auto after = Json(AdminRequest("GET", "/v1/users/" + user + "/export?tenant=shop1"));
  EXPECT_TRUE(after.at("events").as_array().empty());
  EXPECT_TRUE(after.at("bad_rows").as_array().empty());
  // The other shopper is untouched.
  EXPECT_EQ(Json(Get("/v1/users/other-shopper/history?tenant=shop1")).at("history").as_array().size(),
            5u);

  // After a restart (which replays the log) the user does not come back.
  ASSERT_EQ(server_->Stop(), 0) << server_->Stderr();
  ASSERT_TRUE(server_->Start()) << server_->Stderr();
  client_ = std::make_unique<tools::HttpClient>("127.0.0.1", server_->port());
  EXPECT_EQ(Get("/v1/users/" + user + "/history?tenant=shop1").status, 404);
  ASSERT_EQ(server_->Stop(), 0) << server_->Stderr();

  auto hits = ScanStore(dir_.Sub("data") + "/db", user);
  EXPECT_TRUE(hits.empty()) << hits.size() << " keys still name the user, first: " << hits[0];
}

}  // namespace
}  // namespace streamrec::e2e
