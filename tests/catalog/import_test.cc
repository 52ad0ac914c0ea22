#include "catalog/import.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/datasets.h"
#include "support/temp_dir.h"

namespace streamrec::catalog {
namespace {

using common::Code;

TEST(ParseItemsJson, ArrayAndWrappedObject) {
  auto items = ParseItemsJson(
      R"([{"id":"a","price":"9.5","categories":["x","y"],"tags":"t","available":false},
          {"id":42,"shopify_id":7001,"published":false,"updated_ms":5,"unknown":1}])",
      "shop");
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].tenant, "shop");
  EXPECT_EQ((*items)[0].price, 9.5);
  EXPECT_EQ((*items)[0].categories, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ((*items)[0].tags, (std::vector<std::string>{"t"}));
  EXPECT_FALSE((*items)[0].available);
  EXPECT_EQ((*items)[1].id, "42");
  EXPECT_EQ((*items)[1].shopify_id, "7001");
  EXPECT_FALSE((*items)[1].published);
  EXPECT_EQ((*items)[1].updated_ms, 5);

  auto wrapped = ParseItemsJson(R"({"items":[{"id":"a"}]})", "shop");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->size(), 1u);
}

TEST(ParseItemsJson, ErrorsNameIndexFieldAndLine) {
  auto bad_price = ParseItemsJson(R"([{"id":"a"},{"id":"b","price":"cheap"}])", "shop");
  ASSERT_FALSE(bad_price.ok());
  EXPECT_EQ(bad_price.status().field, "items[1].price");
  EXPECT_NE(bad_price.status().message.find("cheap"), std::string::npos);

  auto no_id = ParseItemsJson(R"([{"title":"x"}])", "shop");
  EXPECT_EQ(no_id.status().field, "items[0].id");
  EXPECT_EQ(ParseItemsJson(R"([{"id":"a","available":"yes"}])", "s").status().field,
            "items[0].available");
  EXPECT_EQ(ParseItemsJson(R"({"products":[]})", "s").status().field, "items");

  auto syntax = ParseItemsJson("[\n{\"id\":\"a\"},\n{\"id\": }\n]", "shop");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().reason, "invalid_json");
  EXPECT_NE(syntax.status().message.find("line 3"), std::string::npos) << syntax.status().message;
}

TEST(ParseItemsJsonl, LinesAndLineNumbers) {
  auto items = ParseItemsJsonl("{\"id\":\"a\"}\n\n{\"id\":\"b\",\"price\":2}\n", "shop");
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[1].price, 2);

  auto bad = ParseItemsJsonl("{\"id\":\"a\"}\n\n{\"id\":\"b\",\"price\":true}\n", "shop");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field, "price");
  EXPECT_EQ(bad.status().message.rfind("line 3:", 0), 0u) << bad.status().message;

  auto syntax = ParseItemsJsonl("{\"id\":\"a\"}\n{\"id\":\n", "shop");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message.find("line 2"), std::string::npos) << syntax.status().message;
}

TEST(ParseItemsCsv, Rfc4180Quoting) {
  auto items = ParseItemsCsv(
      "\xEF\xBB\xBFId,Title,price,categories,tags,available,published,other\r\n"
      "a,\"Shirt, blue\",19.9,shirts|tops, sale | summer ,true,yes,x\r\n"
      "b,\"The \"\"Red\"\" one\",,,,no,0,\r\n"
      "c,\"two\nlines\",3,,,,,\r\n",
      "shop");
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 3u);
  const auto& a = (*items)[0];
  EXPECT_EQ(a.title, "Shirt, blue");
  EXPECT_EQ(a.price, 19.9);
  EXPECT_EQ(a.categories, (std::vector<std::string>{"shirts", "tops"}));
  EXPECT_EQ(a.tags, (std::vector<std::string>{"sale", "summer"}));
  EXPECT_TRUE(a.available && a.published);
  EXPECT_EQ((*items)[1].title, "The \"Red\" one");
  EXPECT_FALSE((*items)[1].available);
  EXPECT_FALSE((*items)[1].published);
  EXPECT_EQ((*items)[2].title, "two\nlines");
  EXPECT_TRUE((*items)[2].available);  // empty means true
}

TEST(ParseItemsCsv, ErrorsNamePhysicalLines) {
  // The record on line 4 follows a quoted field spanning lines 2-3.
  auto bad_price = ParseItemsCsv("id,title,price\na,\"x\ny\",1\nb,z,abc\n", "shop");
  ASSERT_FALSE(bad_price.ok());
  EXPECT_EQ(bad_price.status().field, "price");
  EXPECT_EQ(bad_price.status().message.rfind("line 4:", 0), 0u) << bad_price.status().message;

  auto fields = ParseItemsCsv("id,title\na,b,c\n", "shop");
  EXPECT_NE(fields.status().message.find("line 2: expected 2 fields, got 3"), std::string::npos)
      << fields.status().message;
  auto quote = ParseItemsCsv("id,title\na,b\"c\n", "shop");
  EXPECT_EQ(quote.status().reason, "invalid_csv");
  EXPECT_NE(quote.status().message.find("line 2"), std::string::npos);
  auto open = ParseItemsCsv("id,title\na,\"never closed\n", "shop");
  EXPECT_NE(open.status().message.find("unterminated"), std::string::npos);
  EXPECT_EQ(ParseItemsCsv("title,price\nx,1\n", "shop").status().field, "id");
  auto flag = ParseItemsCsv("id,available\na,maybe\n", "shop");
  EXPECT_EQ(flag.status().field, "available");
  auto empty_id = ParseItemsCsv("id,title\n,x\n", "shop");
  EXPECT_EQ(empty_id.status().field, "id");
}

TEST(ParseShopify, ProductsShape) {
  auto items = ParseShopifyProductsJson(R"({"products":[
    {"id":632910392,"handle":"ipod-nano","title":"IPod Nano","product_type":"Cult Products",
     "tags":"Emotive, Flash Memory, MP3","published_at":"2007-12-31T19:00:00-05:00",
     "variants":[{"price":"199.00","available":false},{"price":"179.50","available":true}],
     "images":[{"src":"https://cdn.shopify.com/ipod.png"}]},
    {"id":921728736,"handle":"ipod-touch","title":"IPod Touch","product_type":"",
     "tags":["a"],"published_at":null,"variants":[{"price":"5","available":false}]}]})",
                                        "shop", {.currency = "USD"});
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 2u);
  const auto& nano = (*items)[0];
  EXPECT_EQ(nano.id, "ipod-nano");
  EXPECT_EQ(nano.shopify_id, "632910392");
  EXPECT_EQ(nano.url, "/products/ipod-nano");
  EXPECT_EQ(nano.price, 179.5);
  EXPECT_TRUE(nano.available);
  EXPECT_TRUE(nano.published);
  EXPECT_EQ(nano.categories, (std::vector<std::string>{"Cult Products"}));
  EXPECT_EQ(nano.tags, (std::vector<std::string>{"Emotive", "Flash Memory", "MP3"}));
  EXPECT_EQ(nano.image_url, "https://cdn.shopify.com/ipod.png");
  EXPECT_EQ(nano.currency, "USD");
  const auto& touch = (*items)[1];
  EXPECT_FALSE(touch.available);
  EXPECT_FALSE(touch.published);
  EXPECT_TRUE(touch.categories.empty());

  auto by_id = ParseShopifyProductsJson(R"({"products":[{"id":1,"handle":"h"}]})", "s",
                                        {.id_from_handle = false});
  EXPECT_EQ((*by_id)[0].id, "1");

  auto bad = ParseShopifyProductsJson(
      R"({"products":[{"id":1,"handle":"h","variants":[{"price":"1"},{"price":"x"}]}]})", "s");
  EXPECT_EQ(bad.status().field, "products[0].variants[1].price");
  EXPECT_EQ(ParseShopifyProductsJson(R"([])", "s").status().field, "products");
}

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::Store::Open(dir_.Sub("db"), {});
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    catalog_ = std::make_unique<Catalog>(*store_);
  }
  std::string Write(const std::string& name, const std::string& body) {
    std::ofstream(dir_.Sub(name)) << body;
    return dir_.Sub(name);
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(ImportTest, ShopifyFixture) {
  auto n = ImportFile(*catalog_, "shop", testing::FixturePath("catalog/shopify_products.json"));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 12u);
  EXPECT_EQ(catalog_->Count("shop"), 12u);
  // URL slugs and Shopify ids both lead to our id.
  EXPECT_EQ(catalog_->Resolve("shop", "trail-runner-2"), "trail-runner-2");
  EXPECT_EQ(catalog_->Resolve("shop", "7001002"), "city-sneaker");
  auto sneaker = catalog_->Get("shop", "city-sneaker");
  ASSERT_TRUE(sneaker);
  EXPECT_EQ(sneaker->price, 110.0);  // lowest variant
  EXPECT_TRUE(sneaker->available);   // one variant in stock
  EXPECT_FALSE(catalog_->Get("shop", "marathon-pro")->available);
  EXPECT_FALSE(catalog_->Get("shop", "prototype-boot")->published);
  EXPECT_EQ(catalog_->Get("shop", "down-parka")->categories, (std::vector<std::string>{"Jackets"}));
  EXPECT_EQ(catalog_->Get("shop", "ankle-socks")->tags,
            (std::vector<std::string>{"running", "sale"}));
  EXPECT_TRUE(catalog_->Get("shop", "gift-card")->image_url.empty());
}

TEST_F(ImportTest, CsvAndJsonlFixturesAndItemsJson) {
  auto csv = ImportFile(*catalog_, "shop", testing::FixturePath("catalog/items.csv"));
  ASSERT_TRUE(csv.ok()) << csv.status().ToString();
  EXPECT_EQ(*csv, 3u);
  EXPECT_EQ(catalog_->Resolve("shop", "blue-shirt"), "sku-1");
  EXPECT_EQ(catalog_->Get("shop", "sku-3")->title, "Two-line\ntitle");
  auto jsonl = ImportFile(*catalog_, "shop", testing::FixturePath("catalog/items.jsonl"));
  ASSERT_TRUE(jsonl.ok()) << jsonl.status().ToString();
  EXPECT_EQ(*jsonl, 2u);
  EXPECT_FALSE(catalog_->Get("shop", "11")->available);
  auto json = ImportFile(*catalog_, "shop", Write("items.json", R"({"items":[{"id":"j"}]})"));
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(catalog_->Count("shop"), 6u);
}

TEST_F(ImportTest, BadFilesWriteNothing) {
  auto bad = ImportFile(*catalog_, "shop", Write("bad.csv", "id,price\na,1\nb,x\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message.find("line 3"), std::string::npos) << bad.status().message;
  EXPECT_EQ(catalog_->Count("shop"), 0u);
  EXPECT_EQ(ImportFile(*catalog_, "shop", Write("x.xml", "<a/>")).status().reason,
            "unknown_format");
  EXPECT_EQ(ImportFile(*catalog_, "shop", dir_.Sub("missing.csv")).status().code, Code::kNotFound);
}

}  // namespace
}  // namespace streamrec::catalog
