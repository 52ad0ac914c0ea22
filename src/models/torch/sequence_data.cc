#include "models/torch/sequence_data.h"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string_view>

namespace streamrec::models {

using common::Result;
using common::Status;

Result<UserSequences> ReadIdSequences(const std::string& path, size_t max_users) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::Make(common::Code::kNotFound, "not_found", "no such data file: " + path, "data");
  }
  gzFile file = gzopen(path.c_str(), "rb");  // reads plain files transparently
  if (file == nullptr) {
    return Status::Make(common::Code::kNotFound, "not_found", "cannot open " + path, "data");
  }
  gzbuffer(file, 1 << 16);
  UserSequences out;
  std::string line;
  char buf[1 << 16];
  int64_t last_user = -1;
  uint64_t line_no = 0;
  Status error;
  auto parse_line = [&](std::string_view text) -> bool {
    ++line_no;
    const char* p = text.data();
    const char* end = p + text.size();
    bool first = true;
    while (p < end) {
      while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
      if (p >= end) break;
      int64_t value = 0;
      auto [next, err] = std::from_chars(p, end, value);
      if (err != std::errc() || (next < end && *next != ' ' && *next != '\t' && *next != '\r') ||
          value < 0 || value > INT32_MAX) {
        error = Status::Invalid(
            "bad_line",
            path + ":" + std::to_string(line_no) + ": expected non-negative integer ids", "data");
        return false;
      }
      p = next;
      if (first) {
        first = false;
        if (value != last_user) {
          if (max_users != 0 && out.sequences.size() == max_users) return false;
          out.sequences.emplace_back();
          last_user = value;
        }
        continue;
      }
      if (value == 0) {
        error = Status::Invalid(
            "bad_line",
            path + ":" + std::to_string(line_no) + ": item id 0 is reserved for padding", "data");
        return false;
      }
      out.sequences.back().push_back(static_cast<int32_t>(value));
      out.n_items = std::max(out.n_items, static_cast<int32_t>(value));
    }
    return true;
  };
  while (true) {
    char* got = gzgets(file, buf, sizeof(buf));
    if (got == nullptr) break;
    std::string_view chunk(got);
    line.append(chunk);
    if (line.empty() || line.back() != '\n') {
      if (!gzeof(file)) continue;  // a line longer than the buffer
    }
    if (!line.empty() && line.back() == '\n') line.pop_back();
    bool more = parse_line(line);
    line.clear();
    if (!more) break;
  }
  if (!line.empty() && error.ok()) parse_line(line);
  int err = Z_OK;
  const char* message = gzerror(file, &err);
  gzclose(file);
  if (!error.ok()) return error;
  if (err != Z_OK && err != Z_STREAM_END) {
    return Status::Invalid("bad_file", path + ": " + message, "data");
  }
  return out;
}

void LooMetrics::Add(int64_t rank) {
  ++users;
  const double gain = 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  if (rank < 5) hr5 += 1, ndcg5 += gain;
  if (rank < 10) hr10 += 1, ndcg10 += gain;
  if (rank < 20) hr20 += 1, ndcg20 += gain;
}

void LooMetrics::Finish() {
  if (users == 0) return;
  const double n = static_cast<double>(users);
  for (double* v : {&hr5, &hr10, &hr20, &ndcg5, &ndcg10, &ndcg20}) *v /= n;
}

std::string LooMetrics::ToJson() const {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "{\"users\":%llu,\"hr@5\":%.4f,\"hr@10\":%.4f,\"hr@20\":%.4f,"
                "\"ndcg@5\":%.4f,\"ndcg@10\":%.4f,\"ndcg@20\":%.4f}",
                static_cast<unsigned long long>(users), hr5, hr10, hr20, ndcg5, ndcg10, ndcg20);
  return buf;
}

LooMetrics EvaluatePopularity(std::span<const std::vector<int32_t>> train,
                              std::span<const std::vector<int32_t>> histories,
                              std::span<const int32_t> targets, int32_t n_items,
                              bool mask_history) {
  std::vector<int64_t> count(static_cast<size_t>(n_items) + 1, 0);
  for (const auto& seq : train) {
    for (int32_t item : seq) {
      if (item > 0 && item <= n_items) ++count[item];
    }
  }
  // Only strictly more popular items rank above the target (ties count in its favour).
  std::vector<int64_t> sorted(count.begin() + 1, count.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  LooMetrics metrics;
  std::vector<int32_t> seen;
  for (size_t u = 0; u < targets.size() && u < histories.size(); ++u) {
    const int32_t target = targets[u];
    const int64_t c = (target > 0 && target <= n_items) ? count[target] : 0;
    int64_t rank =
        std::lower_bound(sorted.begin(), sorted.end(), c, std::greater<>()) - sorted.begin();
    if (mask_history) {
      seen.assign(histories[u].begin(), histories[u].end());
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
      for (int32_t item : seen) {
        if (item != target && item > 0 && item <= n_items && count[item] > c) --rank;
      }
    }
    metrics.Add(rank);
  }
  metrics.Finish();
  return metrics;
}

}  // namespace streamrec::models
