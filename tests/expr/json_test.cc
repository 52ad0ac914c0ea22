#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "expr_test_util.h"

namespace streamrec::expr::testing {
namespace {

TEST(JsonTest, RoundTrip) {
  const char* kJson =
      R"({"s":"a\"b\\c\n\u0001","i":-12,"d":1.5,"big":18446744073709551615,"t":true,"f":false,)"
      R"("n":null,"l":[1,[2],{}],"m":{"x":{"y":[]}},"e":"\u00e9"})";
  auto v = ParseJson(kJson);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->is_map());
  EXPECT_EQ(v->Find("i")->as_int(), -12);
  EXPECT_TRUE(v->Find("big")->is_double()) << "beyond int64";
  EXPECT_EQ(ToJson(*v),
            R"({"s":"a\"b\\c\n\u0001","i":-12,"d":1.5,"big":18446744073709551616.0,"t":true,)"
            R"("f":false,"n":null,"l":[1,[2],{}],"m":{"x":{"y":[]}},"e":"é"})");
  auto again = ParseJson(ToJson(*v));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again == *v);
}

TEST(JsonTest, BoostJson) {
  boost::json::value j = boost::json::parse(R"({"a":[1,2.5,"x",null,true],"b":{"c":9}})");
  Value v = ValueFromJson(j);
  EXPECT_EQ(ToJson(v), R"({"a":[1,2.5,"x",null,true],"b":{"c":9}})");
  EXPECT_EQ(boost::json::serialize(ToBoostJson(v)), boost::json::serialize(j));
}

TEST(JsonTest, SimdjsonElement) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  ASSERT_FALSE(parser.parse(std::string_view(R"([1, "two", {"three": 3.0}])")).get(e));
  EXPECT_EQ(ToJson(ValueFromJson(e)), R"([1,"two",{"three":3.0}])");
}

TEST(JsonTest, InvalidJson) {
  auto v = ParseJson("{\"a\":");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().reason, "invalid_json");
}

TEST(JsonTest, SpecialValues) {
  EXPECT_EQ(ToJson(Value(TimeMs{5})), "5");
  EXPECT_EQ(ToJson(Value(std::nan(""))), "null");
  EXPECT_EQ(ToJson(Value(2.0)), "2.0");
  EXPECT_EQ(ToJson(Value(1e300)), "1e+300");
}

TEST(ValueTest, CheapCopiesShareStorage) {
  Value a(std::string(1000, 'x'));
  Value b = a;
  EXPECT_EQ(a.as_string().data(), b.as_string().data());
  // Short strings are held inline (up to 15 bytes): copies are independent and never allocate.
  Value c("product-123");
  Value d = c;
  EXPECT_NE(c.as_string().data(), d.as_string().data());
  EXPECT_EQ(d.as_string(), "product-123");
  Value longest(std::string(15, 'z'));
  Value moved = std::move(longest);
  EXPECT_EQ(moved.as_string(), std::string(15, 'z'));
  EXPECT_TRUE(longest.is_null());
  EXPECT_EQ(Value(std::string(16, 'z')).as_string(), std::string(16, 'z'));
  EXPECT_EQ(Value("").as_string(), "");
  EXPECT_LE(sizeof(Value), 24u);
}

TEST(ValueTest, UniqueStorageIsWritableOnlyWhenUnshared) {
  Value list(List{Value(1)});
  ASSERT_NE(list.UniqueList(), nullptr);
  list.UniqueList()->push_back(Value(2));
  EXPECT_EQ(ToJson(list), "[1,2]");
  Value held = list;
  EXPECT_EQ(list.UniqueList(), nullptr) << "another owner: must copy, not write";
  EXPECT_EQ(held.as_list().size(), 2u);
  EXPECT_EQ(Value(1).UniqueMap(), nullptr);

  Value text(std::string(40, 'a'));
  const char* buffer = text.as_string().data();
  text.AssignString(std::string(30, 'b'));
  EXPECT_EQ(text.as_string().data(), buffer) << "unshared: refilled in place";
  Value kept = text;
  text.AssignString(std::string(30, 'c'));
  EXPECT_NE(text.as_string().data(), buffer) << "shared: a new string";
  EXPECT_EQ(kept.as_string(), std::string(30, 'b'));
  text.AssignString("short");
  text.AssignString("tiny");
  EXPECT_EQ(text, Value("tiny"));
  text.AssignString("longer");  // inline, growing
  EXPECT_EQ(text, Value("longer"));
  text.AssignString(std::string_view(text.as_string()).substr(2));  // overlapping itself
  EXPECT_EQ(text, Value("nger"));
  text.AssignString("");
  EXPECT_EQ(text, Value(""));
  Value number(5);
  number.AssignString(std::string(20, 'n'));
  EXPECT_EQ(number.as_string(), std::string(20, 'n'));
  // A short string into every plain kind, and into an unshared long string.
  for (Value v : {Value(), Value(true), Value(int64_t{7}), Value(1.5), Value(TimeMs{9})}) {
    v.AssignString("abc");
    EXPECT_EQ(v, Value("abc"));
    EXPECT_TRUE(v.is_string());
  }
  Value unshared(std::string(30, 'u'));
  unshared.AssignString("short");
  EXPECT_EQ(unshared, Value("short"));
}

TEST(ValueTest, InlineAndSharedStringsOfTheSameTextAreEqual) {
  for (size_t n : {0, 1, 14, 15, 16, 40}) {
    const std::string text(n, 'q');
    const Value made(text);  // inline up to 15 bytes
    const Value shared(std::make_shared<const std::string>(text));
    EXPECT_EQ(made, shared) << n;
    EXPECT_EQ(made.as_string(), text) << n;
    auto parsed = ParseJson(ToJson(made));
    ASSERT_TRUE(parsed.ok()) << n;
    EXPECT_EQ(*parsed, made) << n;
    EXPECT_EQ(ToJson(*parsed), "\"" + text + "\"") << n;
  }
}

TEST(ValueTest, CopiesAndMovesOfEveryKind) {
  const Value values[] = {Value(),
                          Value(true),
                          Value(int64_t{-3}),
                          Value(2.5),
                          Value(TimeMs{7}),
                          Value("inline"),
                          Value(std::string(40, 'l')),
                          Value(List{Value(1)}),
                          Value(Map{{"k", Value("v")}})};
  for (const Value& v : values) {
    Value copy = v;
    EXPECT_EQ(copy, v);
    Value moved = std::move(copy);
    EXPECT_EQ(moved, v);
    EXPECT_TRUE(copy.is_null()) << "moved from";
    Value assigned(1);
    assigned = moved;
    EXPECT_EQ(assigned, v);
  }
  // Assigning a value from inside itself (an element of its own list) is safe.
  Value nested(List{Value(std::string(30, 'x')), Value(2)});
  nested = nested.as_list()[0];
  EXPECT_EQ(nested.as_string(), std::string(30, 'x'));
}

TEST(ValueTest, Equality) {
  EXPECT_TRUE(Value(1) == Value(1.0));
  EXPECT_FALSE(Value(1) == Value("1"));
  EXPECT_TRUE(Value(Map{{"a", Value(1)}, {"b", Value(2)}}) ==
              Value(Map{{"b", Value(2)}, {"a", Value(1)}}));
  EXPECT_TRUE(Value() == Value(nullptr));
}

}  // namespace
}  // namespace streamrec::expr::testing
