#include "catalog/catalog.h"

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace streamrec::catalog {
namespace {

Item MakeItem(std::string id, std::string handle = {}, std::string shopify_id = {}) {
  Item item;
  item.tenant = "shop";
  item.id = std::move(id);
  item.handle = std::move(handle);
  item.shopify_id = std::move(shopify_id);
  item.title = "Title " + item.id;
  item.price = 10;
  item.categories = {"shoes"};
  return item;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    catalog_.reset();
    store_.reset();
    auto store = store::Store::Open(dir_.Sub("db"), {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    catalog_ = std::make_unique<Catalog>(*store_, CatalogOptions{.cache_items = 64});
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, RecordRoundTrips) {
  Item item = MakeItem("a", "h", "123");
  item.tags = {"x", "y"};
  item.available = false;
  item.updated_ms = 42;
  auto decoded = DecodeItem("shop", "a", EncodeItem(item));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, item);
  EXPECT_FALSE(DecodeItem("shop", "a", EncodeItem(item).substr(0, 5)).ok());
}

TEST_F(CatalogTest, UpsertGetDeleteSurviveReopen) {
  std::vector<Item> items = {MakeItem("a"), MakeItem("b"), MakeItem("c")};
  ASSERT_TRUE(catalog_->Upsert(items).ok());
  EXPECT_EQ(catalog_->Count("shop"), 3u);
  EXPECT_EQ(catalog_->Count("other"), 0u);
  auto a = catalog_->Get("shop", "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->title, "Title a");
  EXPECT_GT(a->updated_ms, 0);  // stamped by Upsert
  EXPECT_FALSE(catalog_->Get("other", "a"));
  EXPECT_FALSE(catalog_->Get("shop", "zzz"));

  // Replacing does not change the count; a cached miss is replaced by the write.
  Item b2 = MakeItem("b");
  b2.title = "new";
  Item z = MakeItem("zzz");
  ASSERT_TRUE(catalog_->Upsert(std::vector<Item>{b2, z}).ok());
  EXPECT_EQ(catalog_->Get("shop", "b")->title, "new");
  EXPECT_TRUE(catalog_->Get("shop", "zzz"));
  EXPECT_EQ(catalog_->Count("shop"), 4u);

  auto deleted = catalog_->Delete("shop", "a");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);
  EXPECT_FALSE(*catalog_->Delete("shop", "a"));
  EXPECT_FALSE(catalog_->Get("shop", "a"));
  EXPECT_EQ(catalog_->Count("shop"), 3u);

  Reopen();
  EXPECT_EQ(catalog_->Count("shop"), 3u);
  EXPECT_EQ(catalog_->Get("shop", "b")->title, "new");
  EXPECT_FALSE(catalog_->Get("shop", "a"));
}

TEST_F(CatalogTest, DuplicateIdsInABatchLastWins) {
  Item first = MakeItem("a");
  Item second = MakeItem("a");
  second.title = "second";
  ASSERT_TRUE(catalog_->Upsert(std::vector<Item>{first, second}).ok());
  EXPECT_EQ(catalog_->Get("shop", "a")->title, "second");
  EXPECT_EQ(catalog_->Count("shop"), 1u);
}

TEST_F(CatalogTest, ListPagesInIdOrderPerTenant) {
  std::vector<Item> items;
  for (char c : std::string("edcba")) items.push_back(MakeItem(std::string(1, c)));
  Item other = MakeItem("a");
  other.tenant = "shop2";
  items.push_back(other);
  ASSERT_TRUE(catalog_->Upsert(items).ok());
  auto page = catalog_->List("shop", 1, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, "b");
  EXPECT_EQ(page[1].id, "c");
  EXPECT_EQ(catalog_->List("shop", 0, 100).size(), 5u);
  EXPECT_EQ(catalog_->List("shop2", 0, 100).size(), 1u);
  EXPECT_TRUE(catalog_->List("shop", 5, 10).empty());
}

TEST_F(CatalogTest, ResolvesHandlesAndShopifyIds) {
  ASSERT_TRUE(catalog_->Upsert(std::vector<Item>{MakeItem("a", "blue-shoe", "7001")}).ok());
  EXPECT_EQ(catalog_->Resolve("shop", "a"), "a");
  EXPECT_EQ(catalog_->Resolve("shop", "blue-shoe"), "a");
  EXPECT_EQ(catalog_->Resolve("shop", "7001"), "a");
  EXPECT_EQ(catalog_->Resolve("shop", "nope"), std::nullopt);
  EXPECT_EQ(catalog_->Resolve("other", "blue-shoe"), std::nullopt);

  // A renamed handle drops the old alias.
  ASSERT_TRUE(catalog_->Upsert(std::vector<Item>{MakeItem("a", "navy-shoe", "7001")}).ok());
  EXPECT_EQ(catalog_->Resolve("shop", "blue-shoe"), std::nullopt);
  EXPECT_EQ(catalog_->Resolve("shop", "navy-shoe"), "a");

  // A handle moved to another item in the same batch stays with the new owner.
  ASSERT_TRUE(catalog_
                  ->Upsert(std::vector<Item>{MakeItem("b", "navy-shoe"),
                                             MakeItem("a", "old-navy-shoe", "7001")})
                  .ok());
  EXPECT_EQ(catalog_->Resolve("shop", "navy-shoe"), "b");
  EXPECT_EQ(catalog_->Resolve("shop", "old-navy-shoe"), "a");

  ASSERT_TRUE(catalog_->Delete("shop", "a").ok());
  EXPECT_EQ(catalog_->Resolve("shop", "7001"), std::nullopt);
  EXPECT_EQ(catalog_->Resolve("shop", "navy-shoe"), "b");
}

TEST_F(CatalogTest, RejectsInvalidItemsNamingTheField) {
  Item bad = MakeItem("");
  auto s = catalog_->Upsert(std::vector<Item>{MakeItem("ok"), bad});
  EXPECT_EQ(s.code, common::Code::kInvalidArgument);
  EXPECT_EQ(s.field, "items[1].id");
  EXPECT_EQ(catalog_->Count("shop"), 0u);  // all or nothing

  Item price = MakeItem("p");
  price.price = -1;
  EXPECT_EQ(catalog_->Upsert(std::vector<Item>{price}).field, "items[0].price");
  Item nul = MakeItem(std::string("a\0b", 3));
  EXPECT_EQ(catalog_->Upsert(std::vector<Item>{nul}).field, "items[0].id");
  Item no_tenant = MakeItem("x");
  no_tenant.tenant.clear();
  EXPECT_EQ(catalog_->Upsert(std::vector<Item>{no_tenant}).field, "items[0].tenant");
}

TEST_F(CatalogTest, CacheStaysBounded) {
  std::vector<Item> items;
  for (int i = 0; i < 500; ++i) items.push_back(MakeItem("item" + std::to_string(i)));
  ASSERT_TRUE(catalog_->Upsert(items).ok());
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(catalog_->Get("shop", "item" + std::to_string(i)));
  for (int i = 0; i < 500; ++i) catalog_->Get("shop", "missing" + std::to_string(i));
  EXPECT_LE(catalog_->cached_entries(), 64u);
  EXPECT_TRUE(catalog_->Get("shop", "item7"));  // evicted entries read back from RocksDB
}

}  // namespace
}  // namespace streamrec::catalog
