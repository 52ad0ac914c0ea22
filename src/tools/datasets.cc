#include "tools/datasets.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <memory>

#include "common/line_reader.h"

namespace streamrec::tools {
namespace {

using common::Result;
using common::Status;

using common::LineReader;
using common::SplitFields;

Status BadRow(const std::string& path, uint64_t line_no, std::string why) {
  return Status::Invalid("invalid_dataset_row",
                         path + ":" + std::to_string(line_no) + ": " + std::move(why), "file");
}

bool ParseInt(std::string_view text, int64_t& out) {
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), out);
  return err == std::errc() && end == text.data() + text.size();
}

Result<std::vector<Click>> ReadTsv(const std::string& path, LineReader& reader,
                                   const ReadOptions& options) {
  std::vector<Click> clicks;
  std::string line;
  if (!reader.Next(line) || line != "SessionId\tItemId\tTime") {
    return BadRow(
        path, 1,
        "expected header 'SessionId<TAB>ItemId<TAB>Time', got '" + line.substr(0, 80) + "'");
  }
  uint64_t line_no = 1;
  while ((options.limit == 0 || clicks.size() < options.limit) && reader.Next(line)) {
    ++line_no;
    if (line.empty()) continue;
    auto fields = SplitFields(line, '\t');
    if (fields.size() != 3) return BadRow(path, line_no, "expected 3 tab-separated fields");
    double seconds = 0;
    auto [end, err] =
        std::from_chars(fields[2].data(), fields[2].data() + fields[2].size(), seconds);
    if (err != std::errc() || end != fields[2].data() + fields[2].size() || fields[0].empty() ||
        fields[1].empty()) {
      return BadRow(path, line_no, "bad SessionId/ItemId/Time");
    }
    clicks.push_back({std::string(fields[0]), std::string(fields[1]),
                      static_cast<int64_t>(std::llround(seconds * 1000.0)), clicks.size()});
  }
  return clicks;
}

Result<std::vector<Click>> ReadSessionLines(const std::string& path, LineReader& reader,
                                            const ReadOptions& options) {
  std::vector<Click> clicks;
  std::string line;
  uint64_t session = 0;
  while ((options.limit == 0 || clicks.size() < options.limit) && reader.Next(line)) {
    // Empty lines would be empty sessions; they still take a session number so that
    // session ids equal line numbers.
    int64_t t =
        options.synthetic_base_ms + static_cast<int64_t>(session) * options.session_stagger_ms;
    std::string session_id = std::to_string(session);
    for (std::string_view item : SplitFields(line, ' ')) {
      if (item.empty()) continue;
      if (options.limit != 0 && clicks.size() >= options.limit) break;
      clicks.push_back({session_id, std::string(item), t, clicks.size()});
      t += options.click_gap_ms;
    }
    ++session;
  }
  return clicks;
}

Result<std::vector<Click>> ReadSessionTimeCsv(const std::string& path, LineReader& reader,
                                              const ReadOptions& options) {
  std::vector<Click> clicks;
  std::string line;
  reader.Next(line);
  bool offsets;  // timeframe_ms: ms offset inside the session (Diginetica)
  if (line == "session_idx,item_id,timeframe_ms") {
    offsets = true;
  } else if (line == "session_idx,item_id,unix_s") {
    offsets = false;
  } else {
    return BadRow(path, 1,
                  "expected header 'session_idx,item_id,timeframe_ms' or "
                  "'session_idx,item_id,unix_s', got '" +
                      line.substr(0, 80) + "'");
  }
  uint64_t line_no = 1;
  while ((options.limit == 0 || clicks.size() < options.limit) && reader.Next(line)) {
    ++line_no;
    if (line.empty()) continue;
    auto fields = SplitFields(line, ',');
    int64_t session = 0;
    int64_t time = 0;
    if (fields.size() != 3 || !ParseInt(fields[0], session) || fields[1].empty() ||
        !ParseInt(fields[2], time)) {
      return BadRow(path, line_no, "expected 'session_idx,item_id,<integer time>'");
    }
    int64_t ts = offsets ? options.synthetic_base_ms + session * options.session_stagger_ms + time
                         : time * 1000;
    clicks.push_back({std::string(fields[0]), std::string(fields[1]), ts, clicks.size()});
  }
  return clicks;
}

}  // namespace

std::string_view DatasetFormatName(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::kSessionItemTimeTsv:
      return "session_item_time_tsv";
    case DatasetFormat::kSessionLines:
      return "session_lines";
    case DatasetFormat::kSessionTimeCsv:
      return "session_time_csv";
  }
  return "unknown";
}

Result<DatasetFormat> DetectDatasetFormat(std::string_view path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  if (name.starts_with("yoochoose-clicks") && name.ends_with(".txt")) {
    return DatasetFormat::kSessionItemTimeTsv;
  }
  if (name == "train_sessions.txt" || name == "test_sessions.txt") {
    return DatasetFormat::kSessionLines;
  }
  if (name == "test_sessions_time.csv") return DatasetFormat::kSessionTimeCsv;
  return Status::Invalid(
      "unknown_dataset",
      "don't know the format of '" + std::string(path) +
          "'; known: yoochoose-clicks-*.txt[.gz] (SessionId/ItemId/Time TSV), "
          "train_sessions.txt[.gz] / test_sessions.txt[.gz] (one session per line), "
          "test_sessions_time.csv[.gz] (session_idx,item_id,timeframe_ms|unix_s)",
      "file");
}

Result<std::vector<Click>> ReadClicks(const std::string& path, const ReadOptions& options) {
  auto format = DetectDatasetFormat(path);
  if (!format.ok()) return format.status();
  auto reader = LineReader::Open(path);
  if (!reader.ok()) {
    return Status::Make(common::Code::kNotFound, "dataset_not_found",
                        "cannot open dataset file '" + path + "'", "file");
  }
  Result<std::vector<Click>> clicks = Status::Internal("unreachable");
  switch (*format) {
    case DatasetFormat::kSessionItemTimeTsv:
      clicks = ReadTsv(path, *reader, options);
      break;
    case DatasetFormat::kSessionLines:
      clicks = ReadSessionLines(path, *reader, options);
      break;
    case DatasetFormat::kSessionTimeCsv:
      clicks = ReadSessionTimeCsv(path, *reader, options);
      break;
  }
  if (!clicks.ok()) return clicks;
  if (std::string error = reader->Error(); !error.empty()) {
    return Status::Invalid("corrupt_dataset", "reading '" + path + "': " + error, "file");
  }
  std::stable_sort(clicks->begin(), clicks->end(),
                   [](const Click& a, const Click& b) { return a.timestamp_ms < b.timestamp_ms; });
  return clicks;
}

std::string DatasetKey(std::string_view path) {
  std::filesystem::path p(path);
  std::string name = p.filename().string();
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  std::string parent = p.parent_path().filename().string();
  return parent.empty() ? name : parent + "/" + name;
}

}  // namespace streamrec::tools
