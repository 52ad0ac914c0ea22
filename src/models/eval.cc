#include "models/eval.h"

#include <zlib.h>

#include <algorithm>
#include <functional>

namespace streamrec::models {
namespace {

// Calls `fn` for each line (without the newline) of a plain or gzip file.
common::Status ForEachLine(const std::string& path,
                           const std::function<bool(std::string_view)>& fn) {
  gzFile file = gzopen(path.c_str(), "rb");  // reads plain files transparently
  if (!file) {
    return common::Status::Make(common::Code::kNotFound, "file_not_found", "cannot open " + path,
                                "path");
  }
  std::string line;
  char buf[1 << 16];
  bool more = true;
  while (more) {
    char* got = gzgets(file, buf, sizeof(buf));
    if (!got) break;
    line.append(got);
    if (!line.empty() && line.back() == '\n') {
      line.pop_back();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      more = fn(line);
      line.clear();
    }
  }
  if (more && !line.empty()) fn(line);
  int err = 0;
  const char* message = gzerror(file, &err);
  std::string error = err < 0 ? message : "";
  gzclose(file);
  if (!error.empty()) return common::Status::Internal("reading " + path + ": " + error);
  return common::Status::Ok();
}

std::vector<std::string> SplitSpaces(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

void NextItemEvaluator::Add(std::span<const ScoredItem> ranked, std::string_view target) {
  ++metrics_.cases;
  size_t limit = std::min(ranked.size(), metrics_.k);
  for (size_t r = 0; r < limit; ++r) {
    if (ranked[r].item_id == target) {
      ++metrics_.hits;
      metrics_.reciprocal_rank_sum += 1.0 / static_cast<double>(r + 1);
      return;
    }
  }
}

common::Result<std::vector<std::vector<std::string>>> ReadSessions(const std::string& path,
                                                                   size_t max_sessions) {
  std::vector<std::vector<std::string>> sessions;
  auto status = ForEachLine(path, [&](std::string_view line) {
    auto items = SplitSpaces(line);
    if (!items.empty()) sessions.push_back(std::move(items));
    return max_sessions == 0 || sessions.size() < max_sessions;
  });
  if (!status.ok()) return status;
  return sessions;
}

common::Result<std::vector<NextItemCase>> ReadNextItemCases(const std::string& path,
                                                            size_t max_cases) {
  std::vector<NextItemCase> cases;
  size_t line_no = 0;
  common::Status bad;
  auto status = ForEachLine(path, [&](std::string_view line) {
    ++line_no;
    if (line.empty()) return true;
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) {
      bad = common::Status::Invalid("invalid_case",
                                    path + ":" + std::to_string(line_no) + ": no tab", "line");
      return false;
    }
    NextItemCase c{SplitSpaces(line.substr(0, tab)), std::string(line.substr(tab + 1))};
    if (!c.target.empty()) cases.push_back(std::move(c));
    return max_cases == 0 || cases.size() < max_cases;
  });
  if (!status.ok()) return status;
  if (!bad.ok()) return bad;
  return cases;
}

void ReplaySessions(ItemModel& model, std::span<const std::vector<std::string>> sessions,
                    const ReplayOptions& options) {
  int64_t t = options.start_ms;
  std::vector<WindowItem> window;
  events::Event event;
  event.tenant = options.tenant;
  event.type = events::EventType::kView;
  for (size_t s = 0; s < sessions.size(); ++s) {
    window.clear();
    event.user_id = "session-" + std::to_string(s);
    for (const auto& item : sessions[s]) {
      std::erase_if(window,
                    [&](const WindowItem& w) { return w.timestamp_ms < t - options.window_ms; });
      event.item_id = item;
      event.timestamp_ms = t;
      model.Observe(event, window);
      window.push_back({item, t});
      if (window.size() > options.window_max_items) window.erase(window.begin());
      t += options.step_ms;
    }
  }
}

NextItemReport EvaluateNextItem(const ItemModel& model, std::string_view tenant,
                                std::span<const NextItemCase> cases, size_t k, size_t window) {
  NextItemEvaluator recommend(k), popular(k);
  std::vector<ScoredItem> top = model.Popular(tenant, k);
  int64_t now = model.now_ms();
  std::vector<WindowItem> items;
  for (const auto& c : cases) {
    items.clear();
    size_t start = c.prefix.size() > window ? c.prefix.size() - window : 0;
    for (size_t i = start; i < c.prefix.size(); ++i) {
      items.push_back({c.prefix[i], now - static_cast<int64_t>(c.prefix.size() - i)});
    }
    recommend.Add(model.Recommend(tenant, items, k).items, c.target);
    popular.Add(top, c.target);
  }
  return {recommend.metrics(), popular.metrics()};
}

}  // namespace streamrec::models
