#include <atomic>
#include <thread>

#include "expr_test_util.h"

namespace streamrec::expr::testing {
namespace {

using ErrorsTest = ExprTest;

TEST_F(ErrorsTest, UnknownNamesSuggest) {
  EXPECT_EQ(Run("lowr(#s)"), "ERROR: column 1: unknown function 'lowr' (did you mean 'lower'?)");
  EXPECT_EQ(Run("#s.uper()"), "ERROR: column 4: unknown function 'uper' (did you mean 'upper'?)");
  EXPECT_EQ(Run("frobnicate(1)"), "ERROR: column 1: unknown function 'frobnicate'");
  EXPECT_EQ(Run("#inptu.e"), "ERROR: column 1: unknown variable '#inptu' (did you mean '#input'?)");
  EXPECT_EQ(Run("input.e"),
            "ERROR: column 1: unknown name 'input' (variables start with '#': did you mean "
            "'#input'?)");
  EXPECT_EQ(Run("#rec.c"), "ERROR: column 6: unknown field 'c' in {a: int, b: string}");
  EXPECT_EQ(Run("#rec.bb"),
            "ERROR: column 6: unknown field 'bb' in {a: int, b: string} (did you mean 'b'?)");
  EXPECT_EQ(Run("#rec['c']"), "ERROR: column 6: unknown field 'c' in {a: int, b: string}");
}

TEST_F(ErrorsTest, TypeErrorsAtCompileTime) {
  EXPECT_EQ(Run("#s == 1"), "ERROR: column 4: cannot compare string with int");
  EXPECT_EQ(Run("#input.e == 'pv' && #n < 'x'"),
            "ERROR: column 24: cannot compare int with string");
  EXPECT_EQ(Run("#tags < #tags"), "ERROR: column 7: cannot compare list<string> with list<string>");
  EXPECT_EQ(Run("#t == 5"), "ERROR: column 4: cannot compare time with int");
  EXPECT_EQ(Run("#n + true"), "ERROR: column 4: cannot apply '+' to int and bool");
  EXPECT_EQ(Run("#s * 2"), "ERROR: column 4: cannot apply '*' to string and int");
  EXPECT_EQ(Run("#n && true"), "ERROR: column 1: '&&' needs bool operands, got int");
  EXPECT_EQ(Run("!#s"), "ERROR: column 1: '!' needs a bool, got string");
  EXPECT_EQ(Run("-#s"), "ERROR: column 1: cannot negate string");
  EXPECT_EQ(Run("#n ? 1 : 2"), "ERROR: column 1: the condition of '?' must be bool, got int");
  EXPECT_EQ(Run("substring(#s, 'a')"),
            "ERROR: column 15: argument 2 of substring must be int, got string");
  EXPECT_EQ(Run("lower(#n)"), "ERROR: column 7: argument 1 of lower must be string, got int");
  EXPECT_EQ(Run("#n.lower()"), "ERROR: column 1: argument 1 of lower must be string, got int");
  EXPECT_EQ(Run("substring(#s)"),
            "ERROR: column 1: substring takes 2 to 3 arguments, got 1: substring(string, start[, "
            "end])");
  EXPECT_EQ(Run("#s.x"), "ERROR: column 4: cannot read field 'x' of string");
  EXPECT_EQ(Run("#n[0]"), "ERROR: column 3: cannot index int");
  EXPECT_EQ(Run("#tags['a']"), "ERROR: column 7: a list index must be an int, got string");
  EXPECT_EQ(Run("sum(#s)"), "ERROR: column 5: argument 1 of sum must be list, got string");
  EXPECT_EQ(Run("#s", {.expect = Type::Bool()}),
            "ERROR: column 1: expected a bool expression, got string");
  EXPECT_EQ(Run("#input.e", {.expect = Type::Bool()}), "\"pv\"") << "any is checked at run time";
}

TEST_F(ErrorsTest, ConstantErrorsSurfaceAtCompileTime) {
  auto p = Compile("1 / 0", schema_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message, "column 3: division by zero");
  EXPECT_EQ(p.status().reason, "expression_error");
}

TEST_F(ErrorsTest, RuntimeErrorsWithAny) {
  EXPECT_EQ(Run("#input.e == 1"), "ERROR: column 10: cannot compare string with int");
  EXPECT_EQ(Run("#input.e + 1"), "\"pv1\"");
  EXPECT_EQ(Run("#input.qty * #input.e"), "ERROR: column 12: cannot apply '*' to int and string");
  EXPECT_EQ(Run("#input.e && true"), "ERROR: column 8: '&&' needs a bool, got string");
  // A chain is one node: each operand in order, stopping at the first that decides.
  EXPECT_EQ(Run("#n > 1 && #n < 10 && #s == 'Hello'"), "true");
  EXPECT_EQ(Run("#n > 1 && #n > 10 && #input.e"), "false") << "decided before the string";
  EXPECT_EQ(Run("#n > 1 && #n < 10 && #input.e"), "ERROR: column 29: '&&' needs a bool, got string");
  EXPECT_EQ(Run("#n == 0 || #n == 7 || #input.e"), "true");
  EXPECT_EQ(Run("#n == 0 || #n == 1 || #n == 2"), "false");
  EXPECT_EQ(Run("(#n == 0 || #n == 7) && (#s == 'x' || #s == 'Hello') && true"), "true");
  EXPECT_EQ(Run("lower(#input.qty)"),
            "ERROR: column 14: lower: argument 1 must be string, got int");
  EXPECT_EQ(Run("#input.qty / (#n - 7)"), "ERROR: column 12: division by zero");
  EXPECT_EQ(Run("#input.e.x"), "ERROR: column 10: cannot read field 'x' of string");
  EXPECT_EQ(Run("#input.props.sizes['a']"),
            "ERROR: column 20: a list index must be an int, got string");
  EXPECT_EQ(Run("9223372036854775807 + #input.qty"), "ERROR: column 21: integer overflow");
  EXPECT_EQ(Run("contains(#input.e, 1)"),
            "ERROR: column 1: contains: a string can only contain a string, got int");
  EXPECT_EQ(Run("sum(#input.props.sizes + ['x'])"), "ERROR: column 1: sum: list holds a string");
}

TEST_F(ErrorsTest, NullSafety) {
  EXPECT_EQ(Run("#input.nothing.x"), "ERROR: column 16: cannot read field 'x' of null (use '?.x')");
  EXPECT_EQ(Run("#input.nothing?.x"), "null");
  EXPECT_EQ(Run("#input.nothing?.x ?: 'default'"), "\"default\"");
  EXPECT_EQ(Run("#input.props?.color"), "\"red\"");
  EXPECT_EQ(Run("#input.nothing[0]"), "ERROR: column 15: cannot index null (use '?.[')");
  EXPECT_EQ(Run("#input.nothing?.[0]"), "null");
  EXPECT_EQ(Run("#input.nothing?.get('a')"), "null");
  EXPECT_EQ(Run("#input.none == null"), "true");
  EXPECT_EQ(Run("#input.missing != null"), "false");
  EXPECT_EQ(Run("#input.missing == 'pv'"), "false");
  EXPECT_EQ(Run("#input.missing < 3"), "false") << "null is unordered";
  EXPECT_EQ(Run("#input.missing >= 3"), "false");
  EXPECT_EQ(Run("#input.missing + 1"), "null") << "null propagates through arithmetic";
  EXPECT_EQ(Run("'id:' + #input.missing"), "null");
  EXPECT_EQ(Run("lower(#input.missing)"), "null") << "functions propagate a null subject";
  EXPECT_EQ(Run("url_path(#input.missing).starts_with('/products/')"), "null");
  EXPECT_EQ(Run("!#input.missing"), "true") << "null is false in conditions";
  EXPECT_EQ(Run("#input.missing ? 1 : 2"), "2");
  EXPECT_EQ(Run("#input.missing && true"), "false");
  EXPECT_EQ(Run("starts_with(#s, #input.missing)"),
            "ERROR: column 24: starts_with: argument 2 is null");
}

TEST_F(ErrorsTest, EvalBool) {
  Env env(schema_);
  auto p = Compile("#input.e == 'pv'", schema_);
  ASSERT_TRUE(p.ok());
  auto r = p->EvalBool(env);  // #input is null: the field read is an error
  EXPECT_FALSE(r.ok());
  auto q = Compile("#input?.e == 'pv'", schema_);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q->EvalBool(env), false);
  EXPECT_EQ(*q->EvalBool(env_), true);
  auto s = Compile("#input.e", schema_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->EvalBool(env_).status().message, "expected a bool result, got string");
}

// EvalRef reads a result in place: a variable is not copied, what an expression makes lands in
// the caller's scratch, and a failure gives nullptr with the error.
TEST_F(ErrorsTest, EvalRefReadsInPlace) {
  common::Status error;
  Value scratch;
  auto var = Compile("#tags", schema_);
  ASSERT_TRUE(var.ok());
  EXPECT_EQ(var->EvalRef(env_, scratch, &error), &env_.Get(6));
  auto member = Compile("#rec.b", schema_);
  ASSERT_TRUE(member.ok());
  const Value* b = member->EvalRef(env_, scratch, &error);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(ToJson(*b), "\"x\"");
  auto made = Compile("#n + 1", schema_);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->EvalRef(env_, scratch, &error), &scratch);
  EXPECT_EQ(ToJson(scratch), "8");
  // A record made into a kept scratch is refilled there while nobody else holds it.
  auto record = Compile("{n: #n, s: #s}", schema_);
  ASSERT_TRUE(record.ok());
  Value kept;
  ASSERT_EQ(record->EvalRef(env_, kept, &error), &kept);
  const Map* storage = &kept.as_map();
  env_.Set(2, Value(int64_t{8}));
  ASSERT_EQ(record->EvalRef(env_, kept, &error), &kept);
  EXPECT_EQ(&kept.as_map(), storage) << "refilled in place";
  EXPECT_EQ(ToJson(kept), R"({"n":8,"s":"Hello"})");
  Value holder = kept;
  env_.Set(2, Value(int64_t{9}));
  ASSERT_EQ(record->EvalRef(env_, kept, &error), &kept);
  EXPECT_EQ(ToJson(holder), R"({"n":8,"s":"Hello"})") << "a held record is never changed";
  EXPECT_EQ(ToJson(kept), R"({"n":9,"s":"Hello"})");
  auto other = Compile("{m: #n}", schema_);
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->EvalRef(env_, kept, &error), &kept);
  EXPECT_EQ(ToJson(kept), R"({"m":9})") << "another shape: made anew";

  auto failing = Compile("#input.e.x", schema_);
  ASSERT_TRUE(failing.ok());
  EXPECT_EQ(failing->EvalRef(env_, scratch, &error), nullptr);
  EXPECT_NE(error.message.find("cannot read field 'x' of string"), std::string::npos)
      << error.message;
}

TEST_F(ErrorsTest, ResultTypes) {
  auto type_of = [&](std::string_view src) {
    auto p = Compile(src, schema_);
    return p.ok() ? p->result_type().ToString() : p.status().message;
  };
  EXPECT_EQ(type_of("#n + 1"), "int");
  EXPECT_EQ(type_of("#n + 1.5"), "double");
  EXPECT_EQ(type_of("#s + #n"), "string");
  EXPECT_EQ(type_of("#input.x"), "any");
  EXPECT_EQ(type_of("#rec.b"), "string");
  EXPECT_EQ(type_of("#tags[0]"), "string");
  EXPECT_EQ(type_of("map(#tags, t -> length(t))"), "list<int>");
  EXPECT_EQ(type_of("filter(#tags, t -> true)"), "list<string>");
  EXPECT_EQ(type_of("#input.x ?: 'd'"), "any");
  EXPECT_EQ(type_of("#s ?: 'd'"), "string");
  EXPECT_EQ(type_of("{a: 1, b: 'x'}"), "{a: int, b: string}");
  EXPECT_EQ(type_of("url_match(#s, '/p/{x}')"), "map<string>");
  EXPECT_EQ(type_of("#t - #t"), "int");
  EXPECT_EQ(type_of("#t + 5"), "time");
  EXPECT_EQ(type_of("parse_time(#s)"), "time");
}

TEST_F(ErrorsTest, ConstantFolding) {
  auto p = Compile("lower('A' + 'B') == 'ab' && size([1, 2]) == 2", schema_);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->is_constant());
  auto q = Compile("false && #input.e == 'x'", schema_);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->is_constant());
  auto r = Compile("#input.e == lower('PV')", schema_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->is_constant());
  EXPECT_EQ(Run("#input.e == lower('PV')"), "true");
}

TEST_F(ErrorsTest, ProgramsAreSharedAcrossThreadsAndEvents) {
  auto p = Compile("#input.e == 'pv' && #input.aid == 'shop1'", schema_);
  ASSERT_TRUE(p.ok());
  Program copy = *p;
  EXPECT_EQ(*copy.EvalBool(env_), true);
  SetInput(R"({"aid":"shop1","e":"pv"})");  // other field order: the position cache misses
  EXPECT_EQ(*copy.EvalBool(env_), true);
  SetInput(R"({"aid":"shop2","e":"pv"})");
  EXPECT_EQ(*copy.EvalBool(env_), false);
}

TEST_F(ErrorsTest, LongSourceRejected) {
  std::string src(20000, ' ');
  src += "1";
  EXPECT_EQ(Run(src), "ERROR: expression longer than 16384 bytes");
}

}  // namespace
}  // namespace streamrec::expr::testing

namespace streamrec::expr::testing {
namespace {

TEST(ConcurrencyTest, OneProgramManyThreads) {
  Schema schema = TestSchema();
  auto p = Compile("#input.e == 'pv' && url_segment(#input.url, 1) == 'hat'", schema);
  ASSERT_TRUE(p.ok());
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Env env(schema);
      // Different field orders per thread keep the field position cache moving.
      env.Set(0, *ParseJson(t % 2 ? R"({"e":"pv","url":"/products/hat"})"
                                  : R"({"url":"/products/hat","x":1,"e":"pv"})"));
      for (int i = 0; i < 5000; ++i) hits += *p->EvalBool(env) ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(hits.load(), 20000);
}

}  // namespace
}  // namespace streamrec::expr::testing
