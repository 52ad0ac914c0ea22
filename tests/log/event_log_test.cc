#include "log/event_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/key_schema.h"
#include "support/temp_dir.h"

namespace streamrec::log {
namespace {

using events::Event;
using events::EventType;

Event MakeEvent(std::string id, std::string user, int64_t collector_ms = 1'700'000'000'000,
                std::string tenant = "shop1") {
  Event e;
  e.event_id = std::move(id);
  e.tenant = std::move(tenant);
  e.user_id = std::move(user);
  e.item_id = "item-" + e.event_id;
  e.type = EventType::kView;
  e.timestamp_ms = collector_ms - 5;
  e.collector_ms = collector_ms;
  return e;
}

//! A store + log over a temp dir that can be closed and reopened like a restart.
class LogFixture : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    log_.reset();
    store_.reset();
    auto store = store::Store::Open(dir_.Sub("db"), {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto log = EventLog::Open(*store_, options_, metrics_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
  }

  std::vector<LoggedEvent> ReadAll(uint32_t partition) {
    auto r = log_->Read(partition, 0, 1'000'000);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::vector<LoggedEvent>{};
  }

  testing::TempDir dir_;
  LogOptions options_{.partitions = 4};
  common::Registry metrics_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<EventLog> log_;
};

TEST_F(LogFixture, AppendsReadBackInOrderWithDenseSeqsPerPartition) {
  std::vector<Event> batch;
  for (int i = 0; i < 200; ++i)
    batch.push_back(MakeEvent("e" + std::to_string(i), "u" + std::to_string(i % 13)));
  auto r = log_->Append(batch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->appended, 200u);
  EXPECT_EQ(r->duplicates, 0u);

  std::map<uint32_t, std::vector<Event>> expected;
  for (const auto& e : batch) expected[log_->PartitionOf(e.tenant, e.user_id)].push_back(e);
  size_t total = 0;
  for (uint32_t p = 0; p < log_->partitions(); ++p) {
    auto got = ReadAll(p);
    ASSERT_EQ(got.size(), expected[p].size()) << "partition " << p;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].partition, p);
      EXPECT_EQ(got[i].seq, i);
      EXPECT_EQ(got[i].event, expected[p][i]);
    }
    EXPECT_EQ(log_->FirstSeq(p), 0u);
    EXPECT_EQ(log_->NextSeq(p), got.size());
    total += got.size();
  }
  EXPECT_EQ(total, 200u);

  // Read honours from_seq and max.
  uint32_t p = log_->PartitionOf("shop1", "u0");
  auto part = log_->Read(p, 2, 3);
  ASSERT_TRUE(part.ok());
  ASSERT_EQ(part->size(), 3u);
  EXPECT_EQ((*part)[0].seq, 2u);
  EXPECT_EQ((*part)[2].seq, 4u);
  EXPECT_TRUE(log_->Read(p, log_->NextSeq(p), 10)->empty());
  EXPECT_FALSE(log_->Read(99, 0, 10).ok());

  EXPECT_EQ(metrics_.CounterValue("streamrec_log_appended_total"), 200u);
  EXPECT_EQ(metrics_.CounterValue("streamrec_log_commits_total"), 1u);
  EXPECT_NE(metrics_.RenderPrometheus().find("streamrec_log_events 200"), std::string::npos);
}

TEST_F(LogFixture, ReopenContinuesSeqs) {
  ASSERT_TRUE(log_->Append({MakeEvent("a", "u1"), MakeEvent("b", "u1")}).ok());
  const uint32_t p = log_->PartitionOf("shop1", "u1");
  Reopen();
  EXPECT_EQ(log_->NextSeq(p), 2u);
  EXPECT_EQ(log_->FirstSeq(p), 0u);
  ASSERT_TRUE(log_->Append({MakeEvent("c", "u1")}).ok());
  auto got = ReadAll(p);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].seq, 2u);
  EXPECT_EQ(got[2].event.event_id, "c");
}

TEST_F(LogFixture, DuplicatesAreDroppedAndCounted) {
  // Within one request.
  auto r = log_->Append({MakeEvent("a", "u1"), MakeEvent("a", "u1"), MakeEvent("b", "u2")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 2u);
  EXPECT_EQ(r->duplicates, 1u);
  // Across requests; the same id in another tenant is a different event.
  r = log_->Append({MakeEvent("b", "u2"), MakeEvent("a", "u1", 1, "shop2")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 1u);
  EXPECT_EQ(r->duplicates, 1u);
  // After a restart.
  Reopen();
  r = log_->Append({MakeEvent("a", "u1"), MakeEvent("c", "u3")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 1u);
  EXPECT_EQ(r->duplicates, 1u);
  // Events without an id are never de-duplicated.
  r = log_->Append({MakeEvent("", "u4"), MakeEvent("", "u4")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 2u);

  size_t total = 0;
  for (uint32_t p = 0; p < log_->partitions(); ++p) total += ReadAll(p).size();
  EXPECT_EQ(total, 6u);
  // The registry outlives the first log instance, so counters add up across the reopen.
  EXPECT_EQ(metrics_.CounterValue("streamrec_log_duplicates_total"), 3u);
  EXPECT_EQ(metrics_.CounterValue("streamrec_log_appended_total"), 6u);
}

TEST_F(LogFixture, RetryTwiceInOneGroupIsKeptOnce) {
  // Queue requests behind a blocked writer so that they land in one group.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  log_->AppendAsync({MakeEvent("first", "u1")}, [&](common::Result<AppendResult>) {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  std::vector<common::Result<AppendResult>> results;
  for (int i = 0; i < 2; ++i) {
    log_->AppendAsync({MakeEvent("retry", "u2")}, [&](common::Result<AppendResult> r) {
      std::lock_guard lock(mu);
      results.push_back(std::move(r));
    });
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  log_->Stop();
  ASSERT_EQ(results.size(), 2u);
  size_t appended = 0, duplicates = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok());
    appended += r->appended;
    duplicates += r->duplicates;
  }
  EXPECT_EQ(appended, 1u);
  EXPECT_EQ(duplicates, 1u);
  size_t stored = 0;
  for (const auto& e : ReadAll(log_->PartitionOf("shop1", "u2")))
    stored += e.event.event_id == "retry";
  EXPECT_EQ(stored, 1u);
  EXPECT_EQ(metrics_.CounterValue("streamrec_log_commits_total"), 2u);  // one per group
}

TEST_F(LogFixture, ConcurrentAppendsAreAcknowledgedOnceAndListenedInSeqOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<uint64_t> listener_next(log_->partitions(), 0);
  std::set<std::string> listened;
  bool listener_in_order = true;
  log_->SetCommitListener([&](std::span<const LoggedEvent> events) {
    // Runs on the writer thread only: no lock needed for its own state.
    for (const auto& e : events) {
      if (e.seq != listener_next[e.partition]++) listener_in_order = false;
      if (!listened.insert(e.event.event_id).second) listener_in_order = false;
    }
  });

  std::atomic<int> acked{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        // Half blocking, half async: both paths share the writer.
        if (i % 2 == 0) {
          auto r = log_->Append({MakeEvent(id, "user" + std::to_string(i % 50))});
          (r.ok() && r->appended == 1 ? acked : failed)++;
        } else {
          log_->AppendAsync({MakeEvent(id, "user" + std::to_string(i % 50))},
                            [&](common::Result<AppendResult> r) {
                              (r.ok() && r->appended == 1 ? acked : failed)++;
                            });
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  log_->Stop();  // drains what is still queued
  EXPECT_EQ(acked.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_TRUE(listener_in_order);
  EXPECT_EQ(listened.size(), static_cast<size_t>(kThreads * kPerThread));

  std::set<std::string> stored;
  for (uint32_t p = 0; p < log_->partitions(); ++p) {
    auto got = ReadAll(p);
    EXPECT_EQ(listener_next[p], got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].seq, i);
      stored.insert(got[i].event.event_id);
    }
  }
  EXPECT_EQ(stored, listened);
  EXPECT_EQ(metrics_.CounterValue("streamrec_log_appended_total"),
            static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(metrics_.CounterValue("streamrec_log_commits_total"),
            static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_F(LogFixture, GroupsRespectMaxGroupEvents) {
  options_.max_group_events = 10;
  Reopen();
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i) {
    std::vector<Event> batch;
    for (int j = 0; j < 4; ++j) batch.push_back(MakeEvent(std::to_string(i * 4 + j), "u"));
    log_->AppendAsync(std::move(batch), [&](common::Result<AppendResult> r) {
      if (r.ok() && r->appended == 4) ++done;
    });
  }
  // A request above the group cap is still taken, alone.
  std::vector<Event> big;
  for (int j = 0; j < 25; ++j) big.push_back(MakeEvent("big" + std::to_string(j), "u"));
  auto r = log_->Append(std::move(big));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 25u);
  log_->Stop();
  EXPECT_EQ(done.load(), 10);
  // 40 events in groups of at most 10 (= 2 requests of 4) take at least 5 commits.
  EXPECT_GE(metrics_.CounterValue("streamrec_log_commits_total"), 6u);
  EXPECT_EQ(ReadAll(log_->PartitionOf("shop1", "u")).size(), 65u);
}

TEST_F(LogFixture, PartitionCountMismatchOnReopenIsAnError) {
  log_.reset();
  options_.partitions = 8;
  auto log = EventLog::Open(*store_, options_, metrics_);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code, common::Code::kInvalidArgument);
  EXPECT_EQ(log.status().field, "partitions");
  EXPECT_NE(log.status().message.find("4"), std::string::npos) << log.status().message;
  // The original count still opens.
  options_.partitions = 4;
  EXPECT_TRUE(EventLog::Open(*store_, options_, metrics_).ok());
}

TEST_F(LogFixture, RetentionByTimeStopsAtKeepFrom) {
  options_.retention_ms = 1000;
  Reopen();
  const int64_t now = 1'700'000'100'000;
  std::vector<Event> batch;
  // 10 old events then 5 recent ones, all of user u (one partition).
  for (int i = 0; i < 10; ++i)
    batch.push_back(MakeEvent("old" + std::to_string(i), "u", now - 5000));
  for (int i = 0; i < 5; ++i) batch.push_back(MakeEvent("new" + std::to_string(i), "u", now - 10));
  ASSERT_TRUE(log_->Append(batch).ok());
  const uint32_t p = log_->PartitionOf("shop1", "u");

  std::vector<uint64_t> keep_from(log_->partitions(), ~0ull);
  keep_from[p] = 4;  // a consumer has only processed seqs 0..3
  ASSERT_TRUE(log_->EnforceRetention(now, keep_from).ok());
  EXPECT_EQ(log_->FirstSeq(p), 4u);
  EXPECT_EQ(ReadAll(p).front().seq, 4u);

  keep_from[p] = 15;
  ASSERT_TRUE(log_->EnforceRetention(now, keep_from).ok());
  EXPECT_EQ(log_->FirstSeq(p), 10u);
  auto got = ReadAll(p);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front().event.event_id, "new0");
  EXPECT_EQ(log_->NextSeq(p), 15u);

  // Wrong-sized keep_from is rejected.
  EXPECT_FALSE(log_->EnforceRetention(now, std::vector<uint64_t>{1}).ok());
}

TEST_F(LogFixture, RetentionByCountAndEmptiedPartitionKeepsSeqsAcrossReopen) {
  options_.retention_max_events_per_partition = 3;
  Reopen();
  const int64_t now = 1'700'000'100'000;
  std::vector<Event> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(MakeEvent(std::to_string(i), "u", now));
  ASSERT_TRUE(log_->Append(batch).ok());
  const uint32_t p = log_->PartitionOf("shop1", "u");
  std::vector<uint64_t> keep_from(log_->partitions(), ~0ull);
  ASSERT_TRUE(log_->EnforceRetention(now, keep_from).ok());
  EXPECT_EQ(log_->FirstSeq(p), 7u);
  auto got = ReadAll(p);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].seq, 7u);
  EXPECT_NE(metrics_.RenderPrometheus().find("streamrec_log_events 3"), std::string::npos);

  Reopen();
  EXPECT_EQ(log_->FirstSeq(p), 7u);
  EXPECT_EQ(log_->NextSeq(p), 10u);

  // Everything is old now: the partition empties, yet seqs never restart at 0.
  ASSERT_TRUE(log_->EnforceRetention(now + options_.retention_ms + 1, keep_from).ok());
  EXPECT_EQ(log_->FirstSeq(p), 10u);
  EXPECT_TRUE(ReadAll(p).empty());
  Reopen();
  EXPECT_EQ(log_->FirstSeq(p), 10u);
  EXPECT_EQ(log_->NextSeq(p), 10u);
  ASSERT_TRUE(log_->Append({MakeEvent("later", "u", now)}).ok());
  got = ReadAll(p);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, 10u);
}

TEST_F(LogFixture, StopCommitsQueuedThenRejects) {
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    log_->AppendAsync({MakeEvent(std::to_string(i), "u")}, [&](common::Result<AppendResult> r) {
      if (r.ok() && r->appended == 1) ++ok;
    });
  }
  log_->Stop();
  EXPECT_EQ(ok.load(), 50);
  auto r = log_->Append({MakeEvent("late", "u")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code, common::Code::kUnavailable);
  log_->Stop();  // idempotent
  EXPECT_EQ(ReadAll(log_->PartitionOf("shop1", "u")).size(), 50u);
}

TEST_F(LogFixture, EmptyRequestIsAcknowledged) {
  auto r = log_->Append({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->appended, 0u);
  EXPECT_EQ(metrics_.CounterValue("streamrec_log_commits_total"), 0u);
}

TEST_F(LogFixture, DestroyingTheLogRemovesItsGauge) {
  log_.reset();
  EXPECT_EQ(metrics_.RenderPrometheus().find("\nstreamrec_log_events "), std::string::npos);
}

TEST(PartitionOfTest, IsStableFnv1a) {
  testing::TempDir dir;
  auto store = store::Store::Open(dir.Sub("db"), {});
  ASSERT_TRUE(store.ok());
  common::Registry metrics;
  auto log8 = EventLog::Open(**store, {.partitions = 8}, metrics);
  ASSERT_TRUE(log8.ok());
  // FNV-1a 64 of tenant '\0' user, modulo the partition count; fixed across runs and hosts.
  EXPECT_EQ((*log8)->PartitionOf("shop1", "u-42"), 4u);  // 0x47b7a490f622ba74
  EXPECT_EQ((*log8)->PartitionOf("shop1", "u-43"), 7u);
  EXPECT_EQ((*log8)->PartitionOf("", ""), 7u);  // 0xaf63bd4c8601b7df
  EXPECT_EQ((*log8)->PartitionOf("shop1", "u-42"), (*log8)->PartitionOf("shop1", "u-42"));
}

TEST(PartitionOfTest, DependsOnPartitionCount) {
  testing::TempDir dir;
  common::Registry metrics;
  auto store = store::Store::Open(dir.Sub("db"), {});
  ASSERT_TRUE(store.ok());
  auto log16 = EventLog::Open(**store, {.partitions = 16}, metrics);
  ASSERT_TRUE(log16.ok());
  EXPECT_EQ((*log16)->PartitionOf("acme", "alice"), 15u);  // 0xd76560e7a2b80eaf
  testing::TempDir dir3;
  auto store3 = store::Store::Open(dir3.Sub("db"), {});
  ASSERT_TRUE(store3.ok());
  auto log3 = EventLog::Open(**store3, {.partitions = 3}, metrics);
  ASSERT_TRUE(log3.ok());
  EXPECT_EQ((*log3)->PartitionOf("shop1", "u-42"), 1u);
}

}  // namespace
}  // namespace streamrec::log
