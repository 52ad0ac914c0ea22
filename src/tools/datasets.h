// Readers for the real clickstream datasets in ../shared/datasets, read in place (gzip or
// plain text through zlib), turned into one time-ordered stream of clicks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace streamrec::tools {

struct Click {
  std::string session;
  std::string item;
  int64_t timestamp_ms = 0;
  //! 0-based data row in the file (header excluded; for one-session-per-line files the
  //! n-th click of the file). Stable across runs: event ids are derived from it.
  uint64_t row = 0;
};

enum class DatasetFormat {
  //! session-rec YooChoose sample (`yoochoose-clicks-*.txt[.gz]`): TSV header
  //! `SessionId ItemId Time`, Time in unix seconds with a ms fraction.
  kSessionItemTimeTsv,
  //! `train_sessions.txt[.gz]` / `test_sessions.txt[.gz]` (Diginetica SR-GNN, RetailRocket
  //! MTD): one session per line, item ids space separated, no timestamps.
  kSessionLines,
  //! `test_sessions_time.csv[.gz]`: `session_idx,item_id,<timeframe_ms|unix_s>`.
  kSessionTimeCsv,
};

std::string_view DatasetFormatName(DatasetFormat format);

//! Picks the format from the file name; kInvalidArgument naming the known files otherwise.
common::Result<DatasetFormat> DetectDatasetFormat(std::string_view path);

struct ReadOptions {
  //! Stop after this many data rows of the file (0 = all). Applied before sorting, so a
  //! limited read is a prefix of the file, not of the time-ordered stream.
  size_t limit = 0;
  // Timestamps synthesized for files without wall-clock times (kSessionLines, and
  // `timeframe_ms` CSVs whose times are offsets inside each session): session i starts
  // at base + i * session_stagger, its clicks click_gap apart (or at their offsets).
  // A stagger below the average session duration (~2.5 min for Diginetica) makes sessions
  // interleave as in a live shop: with these defaults about 15 are open at a time.
  int64_t synthetic_base_ms = 1'464'739'200'000;  //!< 2016-06-01T00:00Z, CIKM Cup 2016 era
  int64_t session_stagger_ms = 10'000;
  int64_t click_gap_ms = 30'000;
};

//! Reads a dataset file and returns its clicks sorted by timestamp (ties keep file order),
//! i.e. sessions interleaved as the live clickstream was.
common::Result<std::vector<Click>> ReadClicks(const std::string& path,
                                              const ReadOptions& options = {});

//! A key for event ids: the file name without folders and without ".gz", so that the same
//! data replayed from another checkout yields the same ids.
std::string DatasetKey(std::string_view path);

}  // namespace streamrec::tools
