#include "common/metrics.h"

#include <gtest/gtest.h>

namespace streamrec::common {
namespace {

TEST(MetricsTest, CountersRenderWithLabels) {
  Registry r;
  r.GetCounter("events_total", "Events", {{"reason", "invalid_json"}}).Inc(3);
  r.GetCounter("events_total", "Events", {{"reason", "invalid_json"}}).Inc();
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE events_total counter"), std::string::npos);
  EXPECT_NE(text.find("events_total{reason=\"invalid_json\"} 4"), std::string::npos);
  EXPECT_EQ(r.CounterValue("events_total", {{"reason", "invalid_json"}}), 4u);
  EXPECT_EQ(r.CounterValue("missing"), 0u);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndQuantilesInterpolate) {
  Registry r;
  auto& h = r.GetHistogram("lat_seconds", "Latency", {}, {0.001, 0.01, 0.1});
  for (int i = 0; i < 90; ++i) h.Observe(0.0005);
  for (int i = 0; i < 10; ++i) h.Observe(0.05);
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.001\"} 90"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 100"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 100"), std::string::npos);
  EXPECT_LE(h.Quantile(0.5), 0.001);
  EXPECT_GT(h.Quantile(0.99), 0.01);
  EXPECT_LE(h.Quantile(0.99), 0.1);
}

TEST(MetricsTest, GaugeCallbacksAreEvaluatedAtRenderAndRemovable) {
  Registry r;
  int owner = 0;
  double value = 7;
  r.AddGaugeCallback(
      "state_users", "Users", {}, [&] { return value; }, &owner);
  EXPECT_NE(r.RenderPrometheus().find("state_users 7"), std::string::npos);
  value = 9;
  EXPECT_NE(r.RenderPrometheus().find("state_users 9"), std::string::npos);
  r.RemoveCallbacks(&owner);
  EXPECT_EQ(r.RenderPrometheus().find("state_users 9"), std::string::npos);
}

TEST(MetricsTest, LiveSourcesCountUntilRetiredAndTheirCountStays) {
  Registry r;
  Counter& c = r.GetCounter("steps_total", "Steps", {{"step", "f"}});
  c.Inc(2);
  uint64_t first = 5, second = 1;
  c.AddLive(&first, [&] { return first; });
  c.AddLive(&second, [&] { return second; });
  EXPECT_EQ(c.value(), 8u);
  first = 6;
  EXPECT_NE(r.RenderPrometheus().find(R"(steps_total{step="f"} 9)"), std::string::npos);
  c.RetireLive(&first);
  first = 100;  // no longer read
  EXPECT_EQ(c.value(), 9u);
  c.RetireLive(&second);
  EXPECT_EQ(r.CounterValue("steps_total", {{"step", "f"}}), 9u);
}

TEST(MetricsTest, TypeClashIsAProgrammerError) {
  Registry r;
  r.GetCounter("x", "x");
  EXPECT_THROW(r.GetGauge("x", "x"), std::logic_error);
}

}  // namespace
}  // namespace streamrec::common
