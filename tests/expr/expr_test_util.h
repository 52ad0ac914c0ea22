#pragma once

#include <gtest/gtest.h>

#include <string>

#include "expr/expr.h"
#include "expr/json.h"

namespace streamrec::expr::testing {

//! #input (JSON event), #user (map), #n (int), #s (string), #t (time),
//! #rec ({a: int, b: string}), #tags (list<string>).
inline Schema TestSchema() {
  Schema s;
  s.Add("input", Type::MapOf(Type::Any()));
  s.Add("user", Type::MapOf(Type::Any()));
  s.Add("n", Type::Int());
  s.Add("s", Type::String());
  s.Add("t", Type::Time());
  s.Add("rec", Type::Record({{"a", Type::Int()}, {"b", Type::String()}}));
  s.Add("tags", Type::ListOf(Type::String()));
  return s;
}

class ExprTest : public ::testing::Test {
 protected:
  ExprTest() : schema_(TestSchema()), env_(schema_) {
    SetInput(R"({"e":"pv","aid":"shop1","duid":"d-1","price":12.5,"qty":3,"none":null,)"
             R"("url":"https://shop.example/products/red-shoe?utm_source=mail&q=a%20b#top",)"
             R"("props":{"color":"red","sizes":[38,39]}})");
    env_.Set(2, Value(int64_t{7}));
    env_.Set(3, Value("Hello"));
    env_.Set(4, Value(TimeMs{1709294400000}));  // 2024-03-01T12:00:00Z
    env_.Set(5, Value(Map{{"a", Value(1)}, {"b", Value("x")}}));
    env_.Set(6, Value(List{Value("a"), Value("b"), Value("a")}));
  }

  void SetInput(std::string_view json) {
    auto v = ParseJson(json);
    ASSERT_TRUE(v.ok()) << v.status().message;
    env_.Set(0, *v);
  }

  //! Result as JSON text, or "ERROR: message".
  std::string Run(std::string_view src, CompileOptions options = {}) {
    auto p = Compile(src, schema_, options);
    if (!p.ok()) return "ERROR: " + p.status().message;
    auto v = p->Eval(env_);
    if (!v.ok()) return "ERROR: " + v.status().message;
    return ToJson(*v);
  }

  //! Same with constant folding off: both paths must agree.
  std::string RunBoth(std::string_view src) {
    std::string folded = Run(src);
    std::string plain = Run(src, {.fold_constants = false});
    EXPECT_EQ(folded, plain) << src;
    return folded;
  }

  Schema schema_;
  Env env_;
};

}  // namespace streamrec::expr::testing
