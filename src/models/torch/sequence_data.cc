#include "models/torch/sequence_data.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "common/line_reader.h"

namespace streamrec::models {

using common::Result;
using common::Status;

namespace {

// RecBole atomic files: a `name:type` header naming the columns.
bool IsRecboleHeader(std::string_view line) {
  return line.find("user_id:") != std::string_view::npos &&
         line.find("item_id:") != std::string_view::npos;
}

Result<UserSequences> ReadRecbole(const std::string& path, size_t max_users) {
  struct Event {
    int64_t time;
    int32_t item;
  };
  UserSequences out;
  std::unordered_map<std::string, int32_t> users;
  ItemNumbering items;
  std::vector<std::vector<Event>> events;
  int user_col = -1, item_col = -1, time_col = -1;
  uint64_t line_no = 0;
  Status error;
  Status read = common::ForEachLine(path, [&](std::string_view line) {
    auto cols = common::SplitFields(line, '\t');
    if (++line_no == 1) {
      for (size_t i = 0; i < cols.size(); ++i) {
        const auto name = cols[i].substr(0, cols[i].find(':'));
        if (name == "user_id") user_col = int(i);
        if (name == "item_id") item_col = int(i);
        if (name == "timestamp") time_col = int(i);
      }
      if (user_col < 0 || item_col < 0) {
        error = Status::Invalid(
            "bad_header", path + ": the tab-separated header names no user_id or item_id column",
            "data");
        return false;
      }
      return true;
    }
    if (line.empty()) return true;
    const int need = std::max({user_col, item_col, time_col});
    if (int(cols.size()) <= need) {
      error = Status::Invalid("bad_line",
                              path + ":" + std::to_string(line_no) + ": expected " +
                                  std::to_string(need + 1) + " tab-separated columns",
                              "data");
      return false;
    }
    int64_t time = 0;
    if (time_col >= 0) {
      const std::string text(cols[time_col]);
      char* end = nullptr;
      const double t = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || !std::isfinite(t)) {
        error = Status::Invalid(
            "bad_line", path + ":" + std::to_string(line_no) + ": timestamp is not a number",
            "data");
        return false;
      }
      time = std::llround(t);
    }
    auto [u, new_user] = users.try_emplace(std::string(cols[user_col]), int32_t(users.size()));
    if (new_user) {
      if (max_users != 0 && events.size() == max_users) {
        users.erase(u);
        return true;  // later users are skipped, but their lines may interleave: keep reading
      }
      events.emplace_back();
    }
    events[u->second].push_back({time, items.Add(cols[item_col])});
    return true;
  });
  if (!error.ok()) return error;
  if (!read.ok()) return read;
  for (auto& user : events) {
    std::stable_sort(user.begin(), user.end(),
                     [](const Event& a, const Event& b) { return a.time < b.time; });
    auto& seq = out.sequences.emplace_back();
    auto& times = out.times.emplace_back();
    for (const auto& e : user) seq.push_back(e.item), times.push_back(e.time);
  }
  if (time_col < 0) out.times.clear();
  out.n_items = static_cast<int32_t>(items.size());
  out.vocab = std::move(items).Take();
  return out;
}

}  // namespace

Result<UserSequences> ReadIdSequences(const std::string& path, size_t max_users) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::Make(common::Code::kNotFound, "not_found", "no such data file: " + path, "data");
  }
  bool recbole = false;
  auto head = common::ForEachLine(path, [&](std::string_view first) {
    recbole = IsRecboleHeader(first);
    return false;
  });
  if (!head.ok()) return head;
  if (recbole) return ReadRecbole(path, max_users);
  UserSequences out;
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
  Status read = common::ForEachLine(path, parse_line);
  if (!error.ok()) return error;
  if (!read.ok()) return read;
  return out;
}

int32_t GapBucket(int64_t gap_seconds, int32_t buckets) {
  const uint64_t gap = static_cast<uint64_t>(std::max<int64_t>(gap_seconds, 0));
  const int32_t log2 = 63 - std::countl_zero(gap + 1);  // floor(log2(1 + gap))
  return std::min(1 + log2, buckets - 1);
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
