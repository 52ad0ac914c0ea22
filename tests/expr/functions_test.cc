#include "expr/functions.h"

#include "expr_test_util.h"

namespace streamrec::expr::testing {
namespace {

using FunctionsTest = ExprTest;

TEST_F(FunctionsTest, Strings) {
  EXPECT_EQ(RunBoth("starts_with('abc', 'ab')"), "true");
  EXPECT_EQ(RunBoth("ends_with('abc', 'bc')"), "true");
  EXPECT_EQ(RunBoth("ends_with('abc', 'x')"), "false");
  EXPECT_EQ(RunBoth("contains('abc', 'b')"), "true");
  EXPECT_EQ(RunBoth("substring('hello', 1, 3)"), "\"el\"");
  EXPECT_EQ(RunBoth("substring('hello', 2)"), "\"llo\"");
  EXPECT_EQ(RunBoth("substring('hello', -5, 99)"), "\"hello\"") << "clamped";
  EXPECT_EQ(RunBoth("lower('AbC')"), "\"abc\"");
  EXPECT_EQ(RunBoth("upper('AbC')"), "\"ABC\"");
  EXPECT_EQ(RunBoth("trim('  a b \\n')"), "\"a b\"");
  EXPECT_EQ(RunBoth("split('a,b,,c', ',')"), R"(["a","b","","c"])");
  EXPECT_EQ(RunBoth("replace('a-b-c', '-', '+')"), "\"a+b+c\"");
  EXPECT_EQ(RunBoth("length('hello')"), "5");
  EXPECT_EQ(RunBoth("join(['a', 1, true], '/')"), "\"a/1/true\"");
  EXPECT_EQ(RunBoth("'a' + 'b' + 1"), "\"ab1\"");
  EXPECT_EQ(Run("#s.lower()"), "\"hello\"");
}

TEST_F(FunctionsTest, Regex) {
  EXPECT_EQ(RunBoth("regex_match('SKU-123', '^SKU-[0-9]+$')"), "true");
  EXPECT_EQ(RunBoth("regex_match('x SKU-1', 'SKU')"), "true") << "unanchored search";
  EXPECT_EQ(RunBoth("regex_extract('/products/red-shoe/x', '^/products/([^/]+)')"), "\"red-shoe\"");
  EXPECT_EQ(RunBoth("regex_extract('a1b22', '([a-z])([0-9]+)', 2)"), "\"1\"");
  EXPECT_EQ(RunBoth("regex_extract('abc', '[0-9]+')"), "null");
  EXPECT_EQ(RunBoth("regex_extract('ab12', '[0-9]+')"), "\"12\"") << "no group: whole match";
  EXPECT_EQ(Run("regex_match(#s, '(')"), "ERROR: column 17: invalid regex: missing ): (")
      << "a literal pattern is compiled at load";
  EXPECT_EQ(Run("regex_match(#s, #s + '(')"), "ERROR: column 1: invalid regex: missing ): Hello(")
      << "a computed pattern fails at run time";
  EXPECT_EQ(Run("regex_match(#s, 'l+' + '')"), "true");
}

// Strings compared or matched where they lie (a variable, a literal, `?:` of them) answer as
// evaluated values do.
TEST_F(FunctionsTest, StringsReadInPlace) {
  EXPECT_EQ(Run("#s == 'Hello'"), "true");
  EXPECT_EQ(Run("#s != 'Hello'"), "false");
  EXPECT_EQ(Run("#s == 'hello'"), "false");
  EXPECT_EQ(Run("(#s ?: 'x') == 'Hello'"), "true");
  EXPECT_EQ(Run("(#input.none ?: 'x') == 'x'"), "true");
  EXPECT_EQ(Run("#input.none == 'x'"), "false");
  EXPECT_EQ(Run("#input.qty == 'x'"), "ERROR: column 12: cannot compare int with string");
  EXPECT_EQ(Run("regex_match(#s, '^Hel')"), "true");
  EXPECT_EQ(Run("regex_match(#s ?: '', 'x$')"), "false");
  EXPECT_EQ(Run("regex_match(#input.none ?: '', '^$')"), "true");
  EXPECT_EQ(Run("regex_match(#input.none, '^$')"), "null");
}

TEST_F(FunctionsTest, Urls) {
  EXPECT_EQ(Run("url_path(#input.url)"), "\"/products/red-shoe\"");
  EXPECT_EQ(RunBoth("url_path('/a/b?x=1')"), "\"/a/b\"");
  EXPECT_EQ(RunBoth("url_path('https://h.example')"), "\"/\"");
  EXPECT_EQ(RunBoth("url_path('//cdn.example/x.png')"), "\"/x.png\"");
  EXPECT_EQ(RunBoth("url_path('http://h.example?x=/a')"), "\"/\"");
  EXPECT_EQ(RunBoth("url_path('a:b://h.example/y')"), "\"/y\"") << "the first '://' is the scheme's";
  EXPECT_EQ(RunBoth("url_path('/p:x//y#z')"), "\"/p:x//y\"") << "a path first: no scheme";
  EXPECT_EQ(Run("url_param(#input.url, 'utm_source')"), "\"mail\"");
  EXPECT_EQ(Run("url_param(#input.url, 'q')"), "\"a b\"");
  EXPECT_EQ(Run("url_param(#input.url, 'top')"), "null") << "the fragment is no query";
  EXPECT_EQ(RunBoth("url_param('/x?flag&y=2', 'flag')"), "\"\"");
  EXPECT_EQ(Run("url_segment(#input.url, 1)"), "\"red-shoe\"");
  EXPECT_EQ(Run("url_segment(#input.url, -1)"), "\"red-shoe\"");
  EXPECT_EQ(Run("url_segment(#input.url, 2)"), "null");
  EXPECT_EQ(Run("url_match(#input.url, '/products/{slug}')"), R"({"slug":"red-shoe"})");
  EXPECT_EQ(Run("url_match(#input.url, '/products/{slug}')?.slug"), "\"red-shoe\"");
  EXPECT_EQ(RunBoth("url_match('/collections/sale/products/hat', '/products/{slug}')"), "null");
  EXPECT_EQ(
      RunBoth("url_match('/collections/sale/products/hat', '/collections/*/products/{slug}')"),
      R"({"slug":"hat"})");
  EXPECT_EQ(RunBoth("url_match('/products/hat/reviews', '/products/{slug}/**')"),
            R"({"slug":"hat"})");
  // The field read straight from a literal pattern (no map) answers as the map does, on long
  // URLs (read sixteen bytes at a time), encoded segments, queries and fragments.
  for (const char* url :
       {"https://shop-with-a-long-host-name.example/products/a-rather-long-product-slug?x=1#top",
        "https://h.example/products/red%20shoe+2", "//cdn.example/products/x/", "/products",
        "/products/a/b", "https://h.example?x=/products/a", "http://h.example/products/%zz"}) {
    const std::string u = std::string("'") + url + "'";
    const std::string field = RunBoth("url_match(" + u + ", '/products/{slug}')?.slug");
    const std::string map = RunBoth("url_match(" + u + ", '/products/{slug}')");
    EXPECT_EQ(map == "null" ? "null" : R"({"slug":)" + field + "}", map) << url;
    EXPECT_EQ(RunBoth("url_match(" + u + ", '/products/{slug}')?.other"), "null") << url;
  }
  EXPECT_EQ(RunBoth("url_match('https://h.example/products/red%20shoe+2', '/products/{slug}')?.slug"),
            R"("red shoe 2")");
  EXPECT_EQ(RunBoth("url_match('/a/b/c', '/{x}/*/{x}')"), R"({"x":"a","x":"c"})");
  EXPECT_EQ(RunBoth("url_match('/a/b/c', '/{x}/*/{x}')?.x"), R"("a")") << "the first one";
  EXPECT_EQ(RunBoth("url_match('/a', '**')"), "{}");
}

TEST_F(FunctionsTest, NumbersAndTime) {
  EXPECT_EQ(RunBoth("to_int('42')"), "42");
  EXPECT_EQ(RunBoth("to_int(' 4.9 ')"), "4");
  EXPECT_EQ(RunBoth("to_int('x')"), "null");
  EXPECT_EQ(RunBoth("to_int(3.7)"), "3");
  EXPECT_EQ(RunBoth("to_int(true)"), "1");
  EXPECT_EQ(RunBoth("to_double('2.5')"), "2.5");
  EXPECT_EQ(RunBoth("to_double(2)"), "2.0");
  EXPECT_EQ(RunBoth("to_string(12)"), "\"12\"");
  EXPECT_EQ(RunBoth("to_string(1.5)"), "\"1.5\"");
  EXPECT_EQ(RunBoth("to_string([1, 'a'])"), R"("[1,\"a\"]")");
  EXPECT_EQ(RunBoth("abs(-3)"), "3");
  EXPECT_EQ(RunBoth("round(2.5)"), "3");
  EXPECT_EQ(RunBoth("floor(-2.5)"), "-3");
  EXPECT_EQ(RunBoth("ceil(2.1)"), "3");
  EXPECT_EQ(RunBoth("7 / 2"), "3");
  EXPECT_EQ(RunBoth("7 / 2.0"), "3.5");
  EXPECT_EQ(RunBoth("-7 % 3"), "-1");
  EXPECT_EQ(RunBoth("parse_time('2024-03-01T12:00:00Z')"), "1709294400000");
  EXPECT_EQ(RunBoth("parse_time('2024-03-01T13:30:00.250+01:30')"), "1709294400250");
  EXPECT_EQ(RunBoth("parse_time('2024-03-01')"), "1709251200000");
  EXPECT_EQ(RunBoth("parse_time('1969-12-31T23:59:59.999Z')"), "-1");
  EXPECT_EQ(RunBoth("parse_time('2024-02-30')"), "null");
  EXPECT_EQ(RunBoth("parse_time('yesterday')"), "null");
  EXPECT_EQ(Run("format_time(#t)"), "\"2024-03-01T12:00:00.000Z\"");
  EXPECT_EQ(Run("format_time(#t, '%Y/%m/%d %H:%M:%S.%L')"), "\"2024/03/01 12:00:00.000\"");
  EXPECT_EQ(RunBoth("format_time(-1)"), "\"1969-12-31T23:59:59.999Z\"");
  EXPECT_EQ(Run("to_string(#t)"), "\"2024-03-01T12:00:00.000Z\"");
  EXPECT_EQ(Run("#t + 1000 - #t"), "1000");
  EXPECT_EQ(Run("#t - 60000 < #t"), "true");
  EXPECT_EQ(Run("to_int(#t)"), "1709294400000");
}

TEST_F(FunctionsTest, NowComesFromTheEnvWhenSet) {
  env_.set_now_ms(1000);
  EXPECT_EQ(Run("now_ms()"), "1000");
  EXPECT_EQ(Run("now_ms() - parse_time(0)"), "1000");
  env_.set_now_ms(std::nullopt);
  auto p = Compile("now_ms()", schema_);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->is_constant()) << "now_ms() is never folded";
  EXPECT_GT((*p->Eval(env_)).as_time().ms, 1700000000000);
}

TEST_F(FunctionsTest, Lists) {
  EXPECT_EQ(RunBoth("size([1, 2, 3])"), "3");
  EXPECT_EQ(RunBoth("size({a: 1})"), "1");
  EXPECT_EQ(RunBoth("take([1, 2, 3], 2)"), "[1,2]");
  EXPECT_EQ(RunBoth("take([1, 2, 3], 9)"), "[1,2,3]");
  EXPECT_EQ(RunBoth("take([1, 2, 3], -1)"), "[]");
  EXPECT_EQ(RunBoth("last([1, 2, 3], 2)"), "[2,3]");
  EXPECT_EQ(RunBoth("contains([1, 2, 3], 2)"), "true");
  EXPECT_EQ(RunBoth("contains([1, 2, 3], 2.0)"), "true");
  EXPECT_EQ(RunBoth("contains(['a'], 'b')"), "false");
  EXPECT_EQ(RunBoth("distinct([1, 2, 1, 3, 2])"), "[1,2,3]");
  EXPECT_EQ(RunBoth("sum([1, 2, 3])"), "6");
  EXPECT_EQ(RunBoth("sum([1, 2.5])"), "3.5");
  EXPECT_EQ(RunBoth("sum([])"), "0");
  EXPECT_EQ(RunBoth("min([3, 1, 2])"), "1");
  EXPECT_EQ(RunBoth("max(['b', 'c', 'a'])"), "\"c\"");
  EXPECT_EQ(RunBoth("max([])"), "null");
  EXPECT_EQ(RunBoth("[1] + [2]"), "[1,2]");
  EXPECT_EQ(Run("distinct(#tags)"), R"(["a","b"])");
  EXPECT_EQ(Run("#tags.contains('b')"), "true");
}

TEST_F(FunctionsTest, DistinctLargeList) {
  std::string src = "size(distinct([";
  for (int i = 0; i < 100; ++i) src += std::to_string(i % 10) + ",";
  src += "0]))";
  EXPECT_EQ(RunBoth(src), "10");
}

TEST_F(FunctionsTest, Maps) {
  EXPECT_EQ(Run("keys(#input.props)"), R"(["color","sizes"])");
  EXPECT_EQ(Run("get(#input, 'duid', 'none')"), "\"d-1\"");
  EXPECT_EQ(Run("get(#input, 'nope', 'none')"), "\"none\"");
  EXPECT_EQ(Run("get(#input, 'nope')"), "null");
  EXPECT_EQ(RunBoth("get([1, 2], 1)"), "2");
  EXPECT_EQ(RunBoth("get([1, 2], 5, 0)"), "0");
  EXPECT_EQ(Run("get(#input.nothing, 'x', 'd')"), "\"d\"");
  EXPECT_EQ(Run("has(#input, 'duid')"), "true");
  EXPECT_EQ(Run("has(#input, 'none')"), "true") << "present with a null value";
}

TEST_F(FunctionsTest, Lambdas) {
  EXPECT_EQ(RunBoth("filter([1, 2, 3, 4], x -> x % 2 == 0)"), "[2,4]");
  EXPECT_EQ(RunBoth("map([1, 2, 3], x -> x * 10)"), "[10,20,30]");
  EXPECT_EQ(RunBoth("any([1, 2, 3], x -> x > 2)"), "true");
  EXPECT_EQ(RunBoth("all([1, 2, 3], x -> x > 2)"), "false");
  EXPECT_EQ(RunBoth("all([], x -> x > 2)"), "true");
  EXPECT_EQ(Run("map(#input.props.sizes, s -> s + #n)"), "[45,46]") << "variables are visible";
  EXPECT_EQ(Run("map([[1, 2], [3]], l -> map(l, x -> x + size(l)))"), "[[3,4],[4]]")
      << "nested lambdas see outer parameters";
  EXPECT_EQ(Run("map([1, 2], x -> map([10], x -> x))"), "[[10],[10]]") << "inner shadows";
  EXPECT_EQ(Run("filter(#tags, t -> t != 'a').size()"), "1");
  EXPECT_EQ(Run("filter([{p: 1}, {p: 5}], i -> i.p > 2)"), R"([{"p":5}])");
  EXPECT_EQ(Run("map(#input.nothing, x -> x)"), "null");
  EXPECT_EQ(Run("filter([1, 2], x -> 'no')"),
            "ERROR: column 21: the lambda of filter must return bool, got string");
  EXPECT_EQ(Run("filter(#input.props.sizes, x -> x.y)"),
            "ERROR: column 35: cannot read field 'y' of int");
  EXPECT_EQ(Run("size(x -> 1)"),
            "ERROR: column 6: a lambda is only allowed in filter, map, any, all");
  EXPECT_EQ(Run("map([1], x -> y)"), "ERROR: column 15: unknown name 'y'");
  EXPECT_EQ(Run("map([1])"), "ERROR: column 1: map takes a list and a lambda: map(list, x -> ...)");
}

// Simple patterns (literal characters and classes) skip RE2; the answers must be RE2's.
TEST(SimplePatternTest, AgreesWithRe2) {
  const char* kPatterns[] = {
      "^iglu:com[.]snowplowanalytics[.]snowplow/payload_data/jsonschema/1-0-[0-4]$",
      "^SKU-[0-9]$",
      "^/p/",
      "x$",
      "b[a-c]d",
      "a\\.b",
      "a\\$",
      "",
      "^$",
      "[-a]z",
      "[a-]z",
      "ab",
      "[0-9][0-9]$"};
  const char* kTexts[] = {"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                          "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-5",
                          "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4\n",
                          "xiglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
                          "SKU-1",
                          "SKU-12",
                          "/p/x",
                          "/q/p/",
                          "ax",
                          "x\n",
                          "abd abbd",
                          "zbcd",
                          "a.b",
                          "axb",
                          "a$",
                          "a$b",
                          "",
                          "-z",
                          "az",
                          "\xc3\xa9"
                          "ab",
                          "ab\xff",
                          "12",
                          "x9",
                          "\xc3\xa9"
                          "12"};
  for (const char* pattern : kPatterns) {
    auto simple = SimplePattern::Parse(pattern);
    ASSERT_TRUE(simple.has_value()) << pattern;
    RE2 re(pattern);
    ASSERT_TRUE(re.ok()) << pattern;
    for (const char* text : kTexts) {
      EXPECT_EQ(simple->Match(text), RE2::PartialMatch(text, re)) << pattern << " on " << text;
    }
  }
  for (const char* complex :
       {"a+", "^a.b$", "[^/]", "\\d", "(a)", "a|b", "[\\]]", "a{2}", "^a b$", "x*"}) {
    EXPECT_FALSE(SimplePattern::Parse(complex).has_value()) << complex;
  }
}

TEST(ReadsFieldTest, NamesTheRecordFieldsAnExpressionReads) {
  const Schema schema = TestSchema();
  const size_t rec = *schema.Slot("rec");  // {a: int, b: string}
  auto reads = [&](std::string_view source, size_t field) {
    auto program = Compile(source, schema);
    EXPECT_TRUE(program.ok()) << source << ": " << program.status().message;
    return program.ok() && program->ReadsField(rec, field);
  };
  EXPECT_TRUE(reads("#rec.a + 1", 0));
  EXPECT_FALSE(reads("#rec.a + 1", 1));
  EXPECT_FALSE(reads("#rec.a > 0 && #s == 'b'", 1)) << "a literal naming the field is no read";
  EXPECT_TRUE(reads("[#rec.a, size(#rec)]", 1)) << "used whole: every field";
  EXPECT_TRUE(reads("map([1], x -> #rec?.b)", 1)) << "inside a lambda";
  EXPECT_FALSE(reads("#n", 0));
}

TEST(ReadsFieldTest, MembersReadNamesTheMembersUnlessTheFieldIsUsedWhole) {
  Schema schema;
  const size_t ev = schema.Add("ev", Type::Record({{"id", Type::String()},
                                                   {"raw", Type::MapOf(Type::Any())}}));
  auto members = [&](std::string_view source) {
    auto program = Compile(source, schema);
    EXPECT_TRUE(program.ok()) << source << ": " << program.status().message;
    return program.ok() ? program->MembersRead(ev, 1) : std::nullopt;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(members("#ev.raw.url ?: #ev.raw?.e ?: #ev.raw.url"), Names({"e", "url"}));
  EXPECT_EQ(members("#ev.raw != null && null == #ev.raw && #ev.raw.e == 'pv'"), Names({"e"}))
      << "a null test reads no member";
  EXPECT_EQ(members("#ev.id"), Names()) << "the field not read at all";
  EXPECT_EQ(members("map(['a'], k -> #ev.raw.x)"), Names({"x"})) << "inside a lambda";
  EXPECT_EQ(members("#ev.raw.e == 'pv' && size(#ev.raw) > 1"), std::nullopt) << "passed on";
  EXPECT_EQ(members("#ev.raw['e']"), std::nullopt) << "indexed";
  EXPECT_EQ(members("#ev.raw.e == 'pv' && size(#ev) > 1"), std::nullopt) << "record used whole";
  EXPECT_EQ(members("(#ev.raw ?: {}).e"), std::nullopt);
}

}  // namespace
}  // namespace streamrec::expr::testing
