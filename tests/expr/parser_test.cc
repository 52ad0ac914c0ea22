#include "expr_test_util.h"

namespace streamrec::expr::testing {
namespace {

using ParserTest = ExprTest;

TEST_F(ParserTest, Literals) {
  EXPECT_EQ(RunBoth("12"), "12");
  EXPECT_EQ(RunBoth("1.5"), "1.5");
  EXPECT_EQ(RunBoth("2e3"), "2000.0");
  EXPECT_EQ(RunBoth("true"), "true");
  EXPECT_EQ(RunBoth("false"), "false");
  EXPECT_EQ(RunBoth("null"), "null");
  EXPECT_EQ(RunBoth("'text'"), "\"text\"");
  EXPECT_EQ(RunBoth("\"text\""), "\"text\"");
  EXPECT_EQ(RunBoth("[1, 2]"), "[1,2]");
  EXPECT_EQ(RunBoth("[]"), "[]");
  EXPECT_EQ(RunBoth("{a: 1, 'b c': 2}"), R"({"a":1,"b c":2})");
  EXPECT_EQ(RunBoth("{}"), "{}");
  EXPECT_EQ(RunBoth("[1, 'a', [true]]"), R"([1,"a",[true]])");
}

TEST_F(ParserTest, Escapes) {
  EXPECT_EQ(Run(R"('it\'s')"), R"("it's")");
  EXPECT_EQ(Run(R"("say \"hi\"")"), R"("say \"hi\"")");
  EXPECT_EQ(Run(R"('a\nb\tc\\d')"), R"("a\nb\tc\\d")");
  EXPECT_EQ(Run(R"('\u00e9')"), "\"\xC3\xA9\"");
  EXPECT_EQ(Run(R"('it''s')"), "ERROR: column 5: unexpected string")
      << "no SQL-style quote doubling";
  EXPECT_EQ(Run(R"('\q')"), "ERROR: column 2: unknown escape '\\q'");
  EXPECT_EQ(Run("'open"), "ERROR: column 1: unterminated string");
}

TEST_F(ParserTest, Precedence) {
  EXPECT_EQ(RunBoth("1 + 2 * 3"), "7");
  EXPECT_EQ(RunBoth("(1 + 2) * 3"), "9");
  EXPECT_EQ(RunBoth("10 - 4 - 3"), "3") << "left associative";
  EXPECT_EQ(RunBoth("100 / 10 / 5"), "2");
  EXPECT_EQ(RunBoth("7 % 4 * 2"), "6");
  EXPECT_EQ(RunBoth("-2 * 3"), "-6");
  EXPECT_EQ(RunBoth("1 + 2 == 3"), "true");
  EXPECT_EQ(RunBoth("1 < 2 == 2 < 3"), "true");
  EXPECT_EQ(RunBoth("true || false && false"), "true") << "&& binds tighter than ||";
  EXPECT_EQ(RunBoth("!false && false"), "false");
  EXPECT_EQ(RunBoth("!(false && false)"), "true");
  EXPECT_EQ(RunBoth("true ? 1 : 2 + 10"), "1");
  EXPECT_EQ(RunBoth("false ? 1 : true ? 2 : 3"), "2") << "right associative";
  EXPECT_EQ(RunBoth("null ?: null ?: 5"), "5");
  EXPECT_EQ(RunBoth("1 > 2 || 3 > 2 ? 'y' : 'n'"), "\"y\"");
  EXPECT_EQ(RunBoth("true and not false or false"), "true");
}

TEST_F(ParserTest, SyntaxErrorsNameTheColumn) {
  EXPECT_EQ(Run("1 +"), "ERROR: column 4: expected a value, got end of expression");
  EXPECT_EQ(Run("(1 + 2"), "ERROR: column 7: expected ')', got end of expression");
  EXPECT_EQ(Run("#input.e = 'pv'"),
            "ERROR: column 10: '=' is not an operator (did you mean '=='?)");
  EXPECT_EQ(Run("1 2"), "ERROR: column 3: unexpected number");
  EXPECT_EQ(Run("a $ b"), "ERROR: column 3: unexpected character '$'");
  EXPECT_EQ(Run("{a: 1, a: 2}"), "ERROR: column 8: duplicate map key 'a'");
  EXPECT_EQ(Run("true ? 1"),
            "ERROR: column 9: expected ':' of the conditional, got end of expression");
  EXPECT_EQ(Run("99999999999999999999"),
            "ERROR: column 1: integer literal out of range: 99999999999999999999");
  EXPECT_EQ(Run("#input.\n  e ==== 1"), "ERROR: line 2, column 7: expected a value, got '=='");
}

TEST_F(ParserTest, DeepNestingIsRejected) {
  std::string deep(500, '(');
  deep += "1" + std::string(500, ')');
  EXPECT_NE(Run(deep).find("nested too deeply"), std::string::npos);
  std::string nots(1000, '!');
  EXPECT_NE(Run(nots + "true").find("nested too deeply"), std::string::npos);
}

TEST_F(ParserTest, AccessChains) {
  EXPECT_EQ(Run("#input.props.sizes[0]"), "38");
  EXPECT_EQ(Run("#input.props.sizes[-1]"), "39");
  EXPECT_EQ(Run("#input.props.sizes[5]"), "null");
  EXPECT_EQ(Run("#input['props']['color']"), "\"red\"");
  EXPECT_EQ(Run("#input.missing"), "null");
  EXPECT_EQ(Run("#rec.a"), "1");
  EXPECT_EQ(Run("#input.url.url_path().starts_with('/products/')"), "true")
      << "method syntax: x.f(a) is f(x, a)";
}

}  // namespace
}  // namespace streamrec::expr::testing
