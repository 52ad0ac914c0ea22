// Replays a real dataset into a running streamrec as live traffic: Snowplow tp2 POST batches
// (what the JavaScript trackers send) or native JSON event arrays.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/datasets.h"

namespace CLI {
class App;
}

namespace streamrec::tools {

inline constexpr std::string_view kTp2Path = "/com.snowplowanalytics.snowplow/tp2";
inline constexpr std::string_view kEventsPath = "/v1/events";
inline constexpr std::string_view kTp2Schema =
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4";

//! How clicks become events in a request body.
struct PayloadOptions {
  std::string tenant = "demo";
  std::string user_prefix;     //!< user id = user_prefix + session
  std::string dataset_key;     //!< see DatasetKey(); seeds event ids
  int64_t time_offset_ms = 0;  //!< added to every click's timestamp
  int64_t sent_ms = 0;         //!< tp2 `stm`; 0 = now
};

//! A UUID v4-shaped id that depends only on (key, row): re-sending the same data yields
//! the same ids, so the collector de-duplicates a re-run.
std::string EventId(std::string_view key, uint64_t row);

//! `{"schema":kTp2Schema,"data":[{"e":"pv","eid":..,"aid":..,"duid":..,"sid":..,"url":
//! "https://shop.example/products/<item>","dtm":..,"stm":..,"p":"web","tv":"streamrec-replay"}]}`,
//! every value a string (as the trackers send).
std::string BuildTp2Body(std::span<const Click> clicks, const PayloadOptions& options);
//! `[{"event_id":..,"type":"view","user_id":..,"item_id":..,"timestamp":<ms>,"tenant":..}]`.
std::string BuildJsonBody(std::span<const Click> clicks, const PayloadOptions& options);

struct ReplayOptions {
  std::string url;             //!< streamrec base URL, e.g. http://127.0.0.1:8080
  std::string file;            //!< dataset file, see ReadClicks()
  std::string format = "tp2";  //!< or "json"
  size_t batch = 10;           //!< events per request
  double rate = 0;             //!< events/s over all threads, 0 = full speed
  size_t concurrency = 4;      //!< threads, each with its own keep-alive connection
  size_t limit = 0;            //!< first N events of the time-ordered stream, 0 = all
  std::string tenant = "demo";
  bool progress = true;  //!< progress line on stderr (~5x/s on a TTY, every 5 s otherwise)
  //! false: shift times so the last event is "now" (order and gaps kept).
  bool use_dataset_time = false;
  std::string user_prefix;
};

struct ReplayReport {
  uint64_t events = 0;    //!< events in requests answered 2xx
  uint64_t requests = 0;  //!< requests attempted
  uint64_t errors = 0;    //!< non-2xx answers and transport failures
  double seconds = 0;
  double events_per_s = 0;
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  std::string first_error;  //!< status and body (or transport error) of the first failure
};

//! Fails (without a report) on a bad URL, option or dataset file, and with kUnavailable when
//! no request at all got an HTTP answer (server not reachable). Non-2xx answers only count
//! in the report's `errors`.
common::Result<ReplayReport> Replay(const ReplayOptions& options);

//! One figure per line: `name value unit`.
std::string FormatReport(const ReplayReport& report);

//! Adds the replay flags (--url, --file, --format, --batch, --rate, -c/--concurrency,
//! --limit, --tenant, --no-progress, --dataset-time, --user-prefix) to a CLI11 (sub)command;
//! they write into `options`, which must outlive parsing.
void AddReplayFlags(CLI::App& command, ReplayOptions& options);

//! q-quantile (0..1) by nearest rank; sorts `values` in place; 0 when empty.
double Quantile(std::vector<double>& values, double q);

}  // namespace streamrec::tools
