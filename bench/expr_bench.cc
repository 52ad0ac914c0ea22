// ns per evaluation of typical scenario expressions, beside hand-written C++ doing the same
// work on the same Value (the reference: what a compiled-in step would cost).
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "expr/expr.h"
#include "expr/json.h"

namespace {

using namespace streamrec::expr;

constexpr const char* kEvent =
    R"({"e":"pv","aid":"shop1","p":"web","tv":"js-3.1.0","tna":"sp","duid":"d-42",)"
    R"("uid":null,"sid":"s-9","dtm":1709294400000,"url":"https://shop.example/products/)"
    R"(red-shoe?variant=123&utm_source=mail","refr":"https://google.com/","res":"1920x1080"})";

constexpr const char* kFilter =
    "#input.e == 'pv' && #input.aid == 'shop1' && url_path(#input.url).starts_with('/products/')";
constexpr const char* kSlug = "url_match(#input.url, '/products/{slug}')?.slug";
constexpr const char* kSlugRegex =
    "regex_extract(#input.url, '^https?://[^/]+/products/([^/?#]+)')";
constexpr const char* kSlugSegment = "url_segment(#input.url, 1)";

struct Fixture {
  Schema schema;
  Env env;
  Fixture() : schema(MakeSchema()), env(schema) { env.Set(0, *ParseJson(kEvent)); }
  static Schema MakeSchema() {
    Schema s;
    s.Add("input", Type::MapOf(Type::Any()));
    return s;
  }
  Program Compiled(const char* src) {
    auto p = Compile(src, schema);
    if (!p.ok()) std::abort();
    return *p;
  }
};

void BM_Filter(benchmark::State& state) {
  Fixture f;
  Program p = f.Compiled(kFilter);
  for (auto _ : state) benchmark::DoNotOptimize(p.EvalBool(f.env));
}
BENCHMARK(BM_Filter);

void BM_FilterHandWritten(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    const Value& in = f.env.Get(0);
    const Value* e = in.Find("e");
    const Value* aid = in.Find("aid");
    const Value* url = in.Find("url");
    bool r = e && e->is_string() && e->as_string() == "pv" && aid && aid->is_string() &&
             aid->as_string() == "shop1" && url && url->is_string();
    if (r) {
      std::string_view u = url->as_string();
      size_t p = u.find("://");
      u.remove_prefix(u.find('/', p + 3));
      u = u.substr(0, u.find_first_of("?#"));
      r = u.starts_with("/products/");
    }
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_FilterHandWritten);

void BM_SetSlugUrlMatch(benchmark::State& state) {
  Fixture f;
  Program p = f.Compiled(kSlug);
  for (auto _ : state) benchmark::DoNotOptimize(p.Eval(f.env));
}
BENCHMARK(BM_SetSlugUrlMatch);

void BM_SetSlugRegex(benchmark::State& state) {
  Fixture f;
  Program p = f.Compiled(kSlugRegex);
  for (auto _ : state) benchmark::DoNotOptimize(p.Eval(f.env));
}
BENCHMARK(BM_SetSlugRegex);

void BM_SetSlugSegment(benchmark::State& state) {
  Fixture f;
  Program p = f.Compiled(kSlugSegment);
  for (auto _ : state) benchmark::DoNotOptimize(p.Eval(f.env));
}
BENCHMARK(BM_SetSlugSegment);

void BM_Compile(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) benchmark::DoNotOptimize(Compile(kFilter, f.schema));
}
BENCHMARK(BM_Compile);

void BM_ParseEventJson(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ParseJson(kEvent));
}
BENCHMARK(BM_ParseEventJson);

}  // namespace

BENCHMARK_MAIN();
