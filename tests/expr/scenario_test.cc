// The expressions of docs/EXPRESSIONS.md, run as written there.
#include "expr_test_util.h"

namespace streamrec::expr::testing {
namespace {

class ScenarioTest : public ExprTest {};

TEST_F(ScenarioTest, ShopifyFlow) {
  // filter: keep page views of the app id
  const char* kFilter =
      "#input.e == 'pv' && #input.aid == 'shop1' && "
      "url_path(#input.url).starts_with('/products/')";
  EXPECT_EQ(Run(kFilter, {.expect = Type::Bool()}), "true");
  // set: take duid
  EXPECT_EQ(Run("#input.duid ?: #input.uid"), "\"d-1\"");
  // set: the product slug from the URL, three ways
  EXPECT_EQ(Run("url_match(#input.url, '/products/{slug}')?.slug"), "\"red-shoe\"");
  EXPECT_EQ(Run("regex_extract(url_path(#input.url), '^/(?:collections/[^/]+/)?products/([^/]+)')"),
            "\"red-shoe\"");
  EXPECT_EQ(Run("url_segment(#input.url, 1)"), "\"red-shoe\"");
  // record: an item view
  EXPECT_EQ(Run("{user: #input.duid, item: url_segment(#input.url, 1), price: #input.price}"),
            R"({"user":"d-1","item":"red-shoe","price":12.5})");

  SetInput(R"({"e":"se","aid":"shop1","url":"https://shop.example/products/x"})");
  EXPECT_EQ(Run(kFilter), "false");
  SetInput(R"({"e":"pv","aid":"shop1"})");
  EXPECT_EQ(Run(kFilter), "false") << "no url: url_path gives null, && counts it as false";
}

TEST_F(ScenarioTest, Windows) {
  SetInput(R"({"items":[{"id":"a","ts":1},{"id":"b","ts":5},{"id":"a","ts":9}]})");
  EXPECT_EQ(Run("distinct(map(#input.items, i -> i.id))"), R"(["a","b"])");
  EXPECT_EQ(Run("last(map(filter(#input.items, i -> i.ts > 2), i -> i.id), 1)"), R"(["a"])");
  EXPECT_EQ(Run("max(map(#input.items, i -> i.ts)) - min(map(#input.items, i -> i.ts))"), "8");
}

}  // namespace
}  // namespace streamrec::expr::testing
