// What the in-process benchmarks share: real clicks from a dataset file, turned into logged page
// views. Header-only (bench/ has no library of its own).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/event.h"
#include "log/event_log.h"
#include "store/store.h"
#include "tools/datasets.h"

namespace streamrec::bench {

//! The clicks of argv[1] (any format tools::ReadClicks reads), the first argv[3] of them when
//! given, else the first `default_limit` (0: all). Prints `usage` and exits on a wrong command
//! line (needs argv[1] and argv[2]), the reader's error on a bad file.
inline std::vector<tools::Click> ClicksFromArgs(int argc, char** argv, const char* usage,
                                                size_t default_limit = 0) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s\n", usage);
    std::exit(2);
  }
  auto clicks = tools::ReadClicks(argv[1]);
  if (!clicks.ok()) {
    std::fprintf(stderr, "%s\n", clicks.status().ToString().c_str());
    std::exit(1);
  }
  const size_t limit = argc > 3 ? std::stoul(argv[3]) : default_limit;
  if (limit > 0 && clicks->size() > limit) clicks->resize(limit);
  return std::move(clicks).value();
}

//! A click as the collector logs a page view of `tenant` (event id from the click's row).
inline events::Event ViewEvent(const tools::Click& c, const std::string& tenant) {
  events::Event e;
  e.event_id = "bench-" + std::to_string(c.row);
  e.tenant = tenant;
  e.user_id = c.session;
  e.item_id = c.item;
  e.type = events::EventType::kView;
  e.timestamp_ms = c.timestamp_ms;
  e.collector_ms = c.timestamp_ms;
  return e;
}

//! Appends `events` in group commits of 1,000, as a busy collector does.
inline common::Status AppendInGroups(log::EventLog& log, std::vector<events::Event> events) {
  for (size_t begin = 0; begin < events.size(); begin += 1000) {
    const size_t end = std::min(events.size(), begin + 1000);
    std::vector<events::Event> group(std::make_move_iterator(events.begin() + begin),
                                     std::make_move_iterator(events.begin() + end));
    if (auto r = log.Append(std::move(group)); !r.ok()) return r.status();
  }
  return common::Status::Ok();
}

//! A fresh store under `db_dir` and the event log over it.
struct StoreAndLog {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<log::EventLog> log;
};
inline common::Result<StoreAndLog> OpenStoreAndLog(const std::string& db_dir,
                                                   common::Registry& metrics) {
  auto store = store::Store::Open(db_dir, {});
  if (!store.ok()) return store.status();
  auto log = log::EventLog::Open(**store, {}, metrics);
  if (!log.ok()) return log.status();
  return StoreAndLog{std::move(store).value(), std::move(log).value()};
}

}  // namespace streamrec::bench
