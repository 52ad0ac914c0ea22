#include "collector/mapping.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace streamrec::collector {
namespace {

using testing::Base64;

TEST(UrlPatternTest, MatchesProductPathWithHostAndQuery) {
  UrlPattern pattern("/products/{item}");
  EXPECT_EQ(pattern.Match("https://shop.example/products/blue-shirt?variant=1"), "blue-shirt");
  EXPECT_EQ(pattern.Match("https://shop.example/products/blue-shirt#reviews"), "blue-shirt");
  EXPECT_EQ(pattern.Match("https://shop.example:8443/products/blue-shirt/"), "blue-shirt");
  EXPECT_EQ(pattern.Match("//shop.example/products/blue-shirt"), "blue-shirt");
  EXPECT_EQ(pattern.Match("/products/blue-shirt"), "blue-shirt");
}

TEST(UrlPatternTest, MatchesAnywhereInPath) {
  UrlPattern pattern("/products/{item}");
  EXPECT_EQ(pattern.Match("https://shop.example/en/products/x"), "x");
  EXPECT_EQ(pattern.Match("https://shop.example/de-at/store/products/x/reviews"), "x");
}

TEST(UrlPatternTest, DecodesTheItemSegment) {
  UrlPattern pattern("/products/{item}");
  EXPECT_EQ(pattern.Match("https://shop.example/products/caf%C3%A9%20cup"), "café cup");
  // A malformed escape is kept as it is rather than dropping the view.
  EXPECT_EQ(pattern.Match("https://shop.example/products/100%-wool"), "100%-wool");
}

TEST(UrlPatternTest, RejectsNonMatchingPaths) {
  UrlPattern pattern("/products/{item}");
  EXPECT_EQ(pattern.Match("https://shop.example/"), std::nullopt);
  EXPECT_EQ(pattern.Match("https://shop.example"), std::nullopt);
  EXPECT_EQ(pattern.Match("https://shop.example/products/"), std::nullopt);
  EXPECT_EQ(pattern.Match("https://shop.example/category/shirts"), std::nullopt);
  EXPECT_EQ(pattern.Match("https://shop.example/myproducts/x"), std::nullopt);
  EXPECT_EQ(pattern.Match("https://products.example/?products/x"), std::nullopt);
  EXPECT_EQ(pattern.Match(""), std::nullopt);
}

TEST(UrlPatternTest, ItemWithinASegmentAndMultiSegmentPatterns) {
  EXPECT_EQ(UrlPattern("/p/{item}.html").Match("https://s.example/p/sku-12.html?x=1"), "sku-12");
  EXPECT_EQ(UrlPattern("/p/{item}.html").Match("https://s.example/p/.html"), std::nullopt);
  EXPECT_EQ(UrlPattern("/shop/{item}/detail").Match("/en/shop/42/detail"), "42");
  EXPECT_EQ(UrlPattern("/shop/{item}/detail").Match("/en/shop/42/other"), std::nullopt);
  EXPECT_EQ(UrlPattern("/item-{item}").Match("/a/item-7"), "7");
}

TEST(UrlPatternTest, PatternWithoutPlaceholderNeverMatches) {
  EXPECT_EQ(UrlPattern("/products/").Match("/products/x"), std::nullopt);
  EXPECT_EQ(UrlPattern("").Match("/products/x"), std::nullopt);
}

TEST(Base64Test, AcceptsBothAlphabetsPaddedOrNot) {
  // Chosen so that the encoding contains both 62 and 63 ('+/' or '-_').
  const std::string text = "{\"k\":\"\xfb\xff\xbf?>\"}";
  for (bool url_safe : {false, true}) {
    for (bool pad : {false, true}) {
      std::string decoded;
      std::string encoded = Base64(text, url_safe, pad);
      ASSERT_TRUE(DecodeBase64(encoded, &decoded)) << encoded;
      EXPECT_EQ(decoded, text) << encoded;
    }
  }
  std::string decoded;
  EXPECT_TRUE(DecodeBase64("", &decoded));
  EXPECT_EQ(decoded, "");
  EXPECT_TRUE(DecodeBase64("YQ==", &decoded));
  EXPECT_EQ(decoded, "a");
  EXPECT_TRUE(DecodeBase64("YWI", &decoded));
  EXPECT_EQ(decoded, "ab");
}

TEST(Base64Test, RejectsInvalidInput) {
  std::string decoded;
  EXPECT_FALSE(DecodeBase64("eyJh*", &decoded));      // bad character
  EXPECT_FALSE(DecodeBase64("eyJhY", &decoded));      // impossible length (4n+1)
  EXPECT_FALSE(DecodeBase64("YQ=", &decoded));        // wrong padding length
  EXPECT_FALSE(DecodeBase64("Y=Q=", &decoded));       // padding in the middle
  EXPECT_FALSE(DecodeBase64("YWJj YWJj", &decoded));  // whitespace
}

TEST(ParseMillisTest, OnlyPlainNonNegativeIntegers) {
  EXPECT_EQ(ParseMillis("1795434102767"), 1795434102767);
  EXPECT_EQ(ParseMillis("0"), 0);
  EXPECT_EQ(ParseMillis(""), std::nullopt);
  EXPECT_EQ(ParseMillis("-5"), std::nullopt);
  EXPECT_EQ(ParseMillis("12abc"), std::nullopt);
  EXPECT_EQ(ParseMillis(" 12"), std::nullopt);
  EXPECT_EQ(ParseMillis("1.5"), std::nullopt);
  EXPECT_EQ(ParseMillis("99999999999999999999"), std::nullopt);
}

TEST(TenantAllowedTest, EmptyListAllowsAll) {
  MappingOptions options;
  EXPECT_TRUE(TenantAllowed(options, "anything"));
  options.allowed_tenants = {"shop1", "shop2"};
  EXPECT_TRUE(TenantAllowed(options, "shop2"));
  EXPECT_FALSE(TenantAllowed(options, "shop3"));
}

}  // namespace
}  // namespace streamrec::collector
