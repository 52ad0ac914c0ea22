// Single-user latency of a registered model as the server calls it (registry::ModelHost ::
// Recommend, its production version, one thread): p50/p99 over real session prefixes.
// Usage: model_latency_bench REGISTRY_DIR NAME PAIRS_FILE [N=2000] [K=10]
// PAIRS_FILE: `prefix<TAB>target` lines (e.g. diginetica-srgnn/test_pairs.tsv.gz).
// Prints `name value unit` lines.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "models/eval.h"
#include "registry/model_host.h"

using namespace streamrec;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s REGISTRY_DIR NAME PAIRS_FILE [N=2000] [K=10]\n", argv[0]);
    return 2;
  }
  const size_t n = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 2000;
  const size_t k = argc > 5 ? std::strtoul(argv[5], nullptr, 10) : 10;
  auto registry = registry::Registry::Open(argv[1]);
  if (!registry.ok()) {
    std::fprintf(stderr, "%s\n", registry.status().ToString().c_str());
    return 1;
  }
  auto host = registry::ModelHost::Open(*registry, argv[2], {.poll_ms = 0});
  if (!host.ok()) {
    std::fprintf(stderr, "%s\n", host.status().ToString().c_str());
    return 1;
  }
  auto cases = models::ReadNextItemCases(argv[3], n);
  if (!cases.ok() || cases->empty()) {
    std::fprintf(stderr, "no cases in %s\n", argv[3]);
    return 1;
  }
  // Warm-up: first calls fault in the model's pages.
  for (size_t i = 0; i < std::min<size_t>(50, cases->size()); ++i) {
    (*host)->Recommend("bench", "u", (*cases)[i].prefix, k);
  }
  std::vector<double> us;
  size_t answered = 0;
  for (const auto& c : *cases) {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = (*host)->Recommend("bench", "u", c.prefix, k);
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    answered += !out.items.empty();
  }
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[std::min(us.size() - 1, size_t(q * double(us.size())))]; };
  std::printf("model %s\nrequests %zu\nanswered %zu\nk %zu\n", argv[2], us.size(), answered, k);
  std::printf("p50 %.1f us\np90 %.1f us\np99 %.1f us\nmax %.1f us\n", at(0.5), at(0.9), at(0.99),
              us.back());
  return 0;
}
