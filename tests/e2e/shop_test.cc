// In the shop: catalog and business rules over the API, API keys, user tokens and rate limits.
#include "auth/user_token.h"
#include "common/clock.h"
#include "e2e_fixture.h"

namespace streamrec::e2e {
namespace {

using ShopE2eTest = E2eTest;

//! Five shoppers view shirt -> (trousers | sold-out jacket | belt | hat) so that all four are
//! co-visited with the shirt.
void BrowseShop(E2eTest& t, const std::function<tools::HttpResponse(std::string_view,
                                                                     const std::string&)>& post) {
  json::array batch;
  int i = 0;
  for (const char* next : {"trousers", "jacket", "belt", "hat", "trousers"}) {
    std::string user = "shopper-" + std::to_string(i);
    batch.push_back(PageView("0000000" + std::to_string(i) + "-0000-4000-8000-000000000001", user,
                             "shirt", 1'700'000'000'000 + i * 100));
    batch.push_back(PageView("0000000" + std::to_string(i) + "-0000-4000-8000-000000000002", user,
                             next, 1'700'000'000'050 + i * 100));
    ++i;
  }
  ASSERT_EQ(post(kTp2Path, Tp2Body(batch)).status, 200);
}

TEST_F(ShopE2eTest, CatalogAndRulesShapeTheServedList) {
  StartServer();
  // A key scoped to one tenant, created with the bootstrap admin key.
  auto created = AdminRequest("POST", "/v1/keys",
                              R"({"tenant":"shop1","scopes":["catalog:write","rules:write"],"name":"ci"})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string key = std::string(Json(created).at("key").as_string());
  tools::HeaderList shop_key = {{"Authorization", "Bearer " + key}};

  const std::string items = R"([
    {"id":"shirt","title":"Linen shirt","price":40,"currency":"EUR","categories":["tops"],"url":"https://shop.example/products/shirt","image_url":"https://cdn.example/shirt.jpg"},
    {"id":"trousers","title":"Chinos","price":60,"currency":"EUR","categories":["bottoms"]},
    {"id":"jacket","title":"Rain jacket","price":120,"currency":"EUR","categories":["outerwear"],"available":false},
    {"id":"belt","title":"Leather belt","price":25,"currency":"EUR","categories":["accessories"]},
    {"id":"hat","title":"Straw hat","price":20,"currency":"EUR","categories":["accessories"]}])";
  EXPECT_EQ(client_->Request("PUT", "/v1/items?tenant=shop1", items)->status, 401);
  EXPECT_EQ(client_->Request("PUT", "/v1/items?tenant=shop2", items, shop_key)->status, 403);
  auto put = client_->Request("PUT", "/v1/items?tenant=shop1", items, shop_key);
  ASSERT_EQ(put->status, 200) << put->body;
  EXPECT_EQ(Json(*put).at("upserted").to_number<int64_t>(), 5);

  auto rules = client_->Request("PUT", "/v1/rules?tenant=shop1", R"({"product_page":{
      "available_only":true,"diversity":{"max_per_category":1},"limit":3}})", shop_key);
  ASSERT_EQ(rules->status, 200) << rules->body;

  BrowseShop(*this, [&](std::string_view target, const std::string& body) { return Post(target, body); });
  ASSERT_TRUE(WaitProcessed(10));
  Post(kTp2Path, Tp2Body({PageView("99999999-0000-4000-8000-000000000001", "visitor", "shirt",
                                   1'700'000'001'000)}));
  ASSERT_TRUE(WaitProcessed(11));

  // Without rules: the model's list, with catalog fields.
  auto plain = Json(Get("/v1/recommendations?user_id=visitor&tenant=shop1&n=10"));
  std::vector<std::string> plain_ids;
  for (const auto& it : plain.at("items").as_array()) plain_ids.emplace_back(it.at("item_id").as_string());
  EXPECT_NE(std::find(plain_ids.begin(), plain_ids.end(), "jacket"), plain_ids.end());
  EXPECT_FALSE(plain.at("list_id").as_string().empty());

  // With the product page's rules: no sold-out jacket, not the shirt being viewed, one
  // accessory at most: trousers and one of belt/hat are all that may remain.
  auto ruled = Json(Get("/v1/recommendations?user_id=visitor&tenant=shop1&n=10"
                        "&placement=product_page&explain=true&context_item=shirt"));
  const auto& list = ruled.at("items").as_array();
  ASSERT_EQ(list.size(), 2u) << json::serialize(ruled);
  int accessories = 0;
  for (const auto& it : list) {
    EXPECT_NE(it.at("item_id").as_string(), "jacket");
    EXPECT_NE(it.at("item_id").as_string(), "shirt");
    if (it.as_object().contains("category") && it.at("category").as_string() == "accessories") {
      ++accessories;
    }
    EXPECT_FALSE(it.at("reasons").as_array().empty());
  }
  EXPECT_EQ(accessories, 1);
  EXPECT_EQ(list[0].at("item_id").as_string(), "trousers");  // seen twice with the shirt
  EXPECT_EQ(list[0].at("title").as_string(), "Chinos");
  EXPECT_EQ(list[0].at("price").to_number<double>(), 60);
  EXPECT_FALSE(ruled.at("rules").as_array().empty());

  // Rules survive a restart (persisted), and keys do too.
  ASSERT_EQ(server_->Stop(), 0);
  ASSERT_TRUE(server_->Start());
  client_ = std::make_unique<tools::HttpClient>("127.0.0.1", server_->port());
  auto again = Json(Get("/v1/recommendations?user_id=visitor&tenant=shop1&placement=product_page"));
  EXPECT_EQ(again.at("items").as_array().size(), 2u);
  EXPECT_EQ(client_->Request("GET", "/v1/items/hat?tenant=shop1", {}, shop_key)->status, 403)
      << "the shop key has no catalog:read scope";
  EXPECT_EQ(AdminRequest("GET", "/v1/items/hat?tenant=shop1").status, 200);
}

TEST_F(ShopE2eTest, AuthFailuresDoNotSayWhichPartFailed) {
  StartServer();
  auto created = AdminRequest("POST", "/v1/keys", R"({"tenant":"shop1","scopes":["gdpr"]})");
  std::string key = std::string(Json(created).at("key").as_string());
  auto status_of = [&](const std::string& header) {
    return client_->Request("GET", "/v1/users/u/export?tenant=shop1", {},
                            {{"Authorization", header}});
  };
  auto none = client_->Request("GET", "/v1/users/u/export?tenant=shop1");
  auto garbage = status_of("Bearer nonsense");
  auto wrong_secret = status_of("Bearer " + key.substr(0, key.size() - 4) + "AAAA");
  ASSERT_EQ(none->status, 401);
  ASSERT_EQ(garbage->status, 401);
  ASSERT_EQ(wrong_secret->status, 401);
  EXPECT_EQ(Json(*none).at("error"), Json(*garbage).at("error"));
  EXPECT_EQ(Json(*garbage).at("error"), Json(*wrong_secret).at("error"));
  EXPECT_EQ(wrong_secret->body.find(key.substr(0, 10)), std::string::npos);
  EXPECT_EQ(status_of("Bearer " + key)->status, 200);
  EXPECT_EQ(client_->Request("GET", "/v1/users/u/export?tenant=shop2", {},
                             {{"Authorization", "Bearer " + key}})->status,
            403);
  // Revoked keys stop working.
  std::string id = key.substr(3, key.find('_', 3) - 3);
  EXPECT_EQ(AdminRequest("DELETE", "/v1/keys/" + id).status, 200);
  EXPECT_EQ(status_of("Bearer " + key)->status, 401);
}

TEST_F(ShopE2eTest, LoggedInCustomersNeedAFreshTokenAndClientsAreRateLimited) {
  const std::string secret = "an-hmac-secret-of-at-least-32-bytes-long!!";
  setenv("STREAMREC_USER_TOKEN_SECRET", secret.c_str(), 1);
  StartServer("auth:\n  require_user_token_for_logged_in: true\n  rate_limit_per_s: 1\n"
              "  rate_limit_burst: 6\n");
  unsetenv("STREAMREC_USER_TOKEN_SECRET");
  const int64_t now = common::NowMs();
  std::string good = auth::IssueUserToken(secret, "shop1", "cust-1", now + 60'000);
  std::string expired = auth::IssueUserToken(secret, "shop1", "cust-1", now - 1'000);
  std::string other = auth::IssueUserToken(secret, "shop1", "cust-2", now + 60'000);
  auto get = [&](const std::string& q) { return Get("/v1/recommendations?tenant=shop1&" + q).status; };
  EXPECT_EQ(get("customer_id=cust-1"), 401);
  EXPECT_EQ(get("customer_id=cust-1&token=" + expired), 401);
  EXPECT_EQ(get("customer_id=cust-1&token=" + other), 401);
  EXPECT_EQ(get("customer_id=cust-1&token=" + good), 200);
  EXPECT_EQ(get("user_id=anonymous-duid"), 200);  // anonymous device ids need none
  // Burst of 6 used up (5 above + this one), then 429 until the bucket refills.
  EXPECT_EQ(get("user_id=anonymous-duid"), 200);
  auto limited = Get("/v1/recommendations?tenant=shop1&user_id=anonymous-duid");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(Json(limited).at("error").at("reason").as_string(), "rate_limited");
  // Ingest is never rate limited: events are not dropped.
  EXPECT_EQ(Post("/v1/events", R"({"tenant":"shop1","event_id":"x1","type":"view","user_id":"u","item_id":"a","timestamp":1})")
                .status,
            200);
}

}  // namespace
}  // namespace streamrec::e2e

namespace streamrec::e2e {
namespace {

TEST_F(ShopE2eTest, CatalogImportCommandLoadsEachFormatIntoARunningServer) {
  StartServer();
  const std::string fixtures = std::string(STREAMREC_SOURCE_DIR) + "/tests/fixtures/catalog/";
  for (const char* file : {"shopify_products.json", "items.csv", "items.jsonl"}) {
    SCOPED_TRACE(file);
    std::string cmd = std::string(STREAMREC_BINARY) + " catalog import --url http://127.0.0.1:" +
                      std::to_string(server_->port()) + " --tenant shop1 '" + fixtures + file +
                      "' 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    ASSERT_EQ(pclose(p), 0) << out;
    EXPECT_NE(out.find("imported"), std::string::npos) << out;
  }
  auto listed = Json(AdminRequest("GET", "/v1/items?tenant=shop1&limit=1000"));
  EXPECT_GE(listed.at("count").to_number<int64_t>(), 12);
  // Shopify products are keyed by handle, so /products/{handle} URLs map to them.
  const auto& first = listed.at("items").as_array()[0];
  auto one = AdminRequest("GET", "/v1/items/" + std::string(first.at("id").as_string()) +
                                     "?tenant=shop1");
  EXPECT_EQ(one.status, 200) << one.body;
  // Without a key the import is refused with the server's 401.
  unsetenv("STREAMREC_ADMIN_KEY");
  std::string cmd = std::string(STREAMREC_BINARY) + " catalog import --url http://127.0.0.1:" +
                    std::to_string(server_->port()) + " --tenant shop1 '" + fixtures +
                    "items.csv' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  EXPECT_NE(pclose(p), 0);
  EXPECT_NE(out.find("401"), std::string::npos) << out;
}

}  // namespace
}  // namespace streamrec::e2e
