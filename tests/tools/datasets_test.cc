#include "tools/datasets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <unordered_set>

#include "support/datasets.h"

namespace streamrec::tools {
namespace {

std::string RequireDataset(const std::string& relative) {
  auto path = testing::DatasetPath(relative);
  return path ? *path : std::string();
}

#define SKIP_IF_MISSING(path) \
  if ((path).empty()) GTEST_SKIP() << "shared datasets not present"

size_t Sessions(const std::vector<Click>& clicks) {
  std::unordered_set<std::string> sessions;
  for (const Click& c : clicks) sessions.insert(c.session);
  return sessions.size();
}

bool SortedByTime(const std::vector<Click>& clicks) {
  return std::is_sorted(clicks.begin(), clicks.end(), [](const Click& a, const Click& b) {
    return a.timestamp_ms < b.timestamp_ms;
  });
}

TEST(DatasetsTest, YoochooseTrainFullMatchesSourceStats) {
  std::string path =
      RequireDataset("yoochoose-clicks-100k-sessionrec/yoochoose-clicks-100k_train_full.txt.gz");
  SKIP_IF_MISSING(path);
  auto clicks = ReadClicks(path);
  ASSERT_TRUE(clicks.ok()) << clicks.status().ToString();
  EXPECT_EQ(clicks->size(), 70'278u);  // SOURCE.md
  EXPECT_EQ(Sessions(*clicks), 17'794u);
  EXPECT_TRUE(SortedByTime(*clicks));
  // SOURCE.md: train_full covers 2014-04-01 .. 2014-04-07 UTC.
  EXPECT_GE(clicks->front().timestamp_ms, 1'396'310'400'000);
  EXPECT_LT(clicks->back().timestamp_ms, 1'396'915'200'000);
  // Sessions interleave once sorted by time, as the live stream did.
  size_t switches = 0;
  for (size_t i = 1; i < clicks->size(); ++i)
    switches += (*clicks)[i].session != (*clicks)[i - 1].session;
  EXPECT_GT(switches, 17'794u);
  // Rows keep their file position: first data row is session 3, item 214716935 at 1396437466.94.
  auto first_row =
      std::find_if(clicks->begin(), clicks->end(), [](const Click& c) { return c.row == 0; });
  ASSERT_NE(first_row, clicks->end());
  EXPECT_EQ(first_row->session, "3");
  EXPECT_EQ(first_row->item, "214716935");
  EXPECT_EQ(first_row->timestamp_ms, 1'396'437'466'940);
}

TEST(DatasetsTest, DigineticaTrainSessionsMatchSourceStats) {
  std::string path = RequireDataset("diginetica-srgnn/train_sessions.txt.gz");
  SKIP_IF_MISSING(path);
  ReadOptions options;
  auto clicks = ReadClicks(path, options);
  ASSERT_TRUE(clicks.ok()) << clicks.status().ToString();
  EXPECT_EQ(clicks->size(), 906'140u);  // SOURCE.md
  EXPECT_EQ(Sessions(*clicks), 186'670u);
  EXPECT_TRUE(SortedByTime(*clicks));
  // Synthesized times: session i starts at base + i * stagger, clicks click_gap apart.
  // Line 2 is "3 4 5": session "1".
  std::vector<Click> second;
  for (const Click& c : *clicks) {
    if (c.session == "1") second.push_back(c);
  }
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[0].item, "3");
  EXPECT_EQ(second[2].item, "5");
  EXPECT_EQ(second[0].timestamp_ms, options.synthetic_base_ms + options.session_stagger_ms);
  EXPECT_EQ(second[2].timestamp_ms - second[0].timestamp_ms, 2 * options.click_gap_ms);
}

TEST(DatasetsTest, SessionTimeCsvOffsetsAndUnixSeconds) {
  std::string digi = RequireDataset("diginetica-srgnn/test_sessions_time.csv.gz");
  std::string rr = RequireDataset("retailrocket-mtd/test_sessions_time.csv.gz");
  SKIP_IF_MISSING(digi);
  SKIP_IF_MISSING(rr);
  auto d = ReadClicks(digi);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->size(), 76'821u);
  EXPECT_EQ(Sessions(*d), 15'963u);
  auto r = ReadClicks(rr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 24'682u);
  EXPECT_EQ(Sessions(*r), 4'775u);
  // SOURCE.md: 2015-09-11 01:34 .. 2015-09-18 02:58 UTC, real wall-clock times.
  EXPECT_GE(r->front().timestamp_ms, 1'441'935'240'000);
  EXPECT_LE(r->back().timestamp_ms, 1'442'545'140'000);
}

TEST(DatasetsTest, RetailrocketTrainSessions) {
  std::string path = RequireDataset("retailrocket-mtd/train_sessions.txt.gz");
  SKIP_IF_MISSING(path);
  auto clicks = ReadClicks(path);
  ASSERT_TRUE(clicks.ok()) << clicks.status().ToString();
  EXPECT_EQ(clicks->size(), 685'984u);
  EXPECT_EQ(Sessions(*clicks), 126'168u);
}

TEST(DatasetsTest, LimitReadsAFilePrefix) {
  std::string path =
      RequireDataset("yoochoose-clicks-100k-sessionrec/yoochoose-clicks-100k_test.txt.gz");
  SKIP_IF_MISSING(path);
  ReadOptions options;
  options.limit = 100;
  auto clicks = ReadClicks(path, options);
  ASSERT_TRUE(clicks.ok());
  EXPECT_EQ(clicks->size(), 100u);
}

TEST(DatasetsTest, FormatDetectionAndErrors) {
  EXPECT_EQ(*DetectDatasetFormat("/x/yoochoose-clicks-100k_test.txt.gz"),
            DatasetFormat::kSessionItemTimeTsv);
  EXPECT_EQ(*DetectDatasetFormat("a/train_sessions.txt.gz"), DatasetFormat::kSessionLines);
  EXPECT_EQ(*DetectDatasetFormat("test_sessions.txt"), DatasetFormat::kSessionLines);
  EXPECT_EQ(*DetectDatasetFormat("b/test_sessions_time.csv.gz"), DatasetFormat::kSessionTimeCsv);
  auto unknown = DetectDatasetFormat("/data/events.csv");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().reason, "unknown_dataset");
  EXPECT_NE(unknown.status().message.find("train_sessions.txt"), std::string::npos);
  auto missing = ReadClicks("/nonexistent/train_sessions.txt.gz");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code, common::Code::kNotFound);
  EXPECT_EQ(DatasetKey("/a/b/diginetica-srgnn/train_sessions.txt.gz"),
            "diginetica-srgnn/train_sessions.txt");
}

}  // namespace
}  // namespace streamrec::tools
