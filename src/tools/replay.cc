#include "tools/replay.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/json_text.h"
#include "tools/http_client.h"

namespace streamrec::tools {
namespace {

using common::Result;
using common::Status;

uint64_t Fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Appends `"key":"value"` (value escaped) with a leading comma unless first.
void AppendField(std::string& out, std::string_view key, std::string_view value,
                 bool first = false) {
  if (!first) out += ',';
  out += '"';
  out += key;
  out += "\":\"";
  common::AppendJsonEscaped(out, value);
  out += '"';
}

}  // namespace

std::string EventId(std::string_view key, uint64_t row) {
  uint64_t hi = SplitMix(Fnv1a(key) ^ SplitMix(row));
  uint64_t lo = SplitMix(hi ^ row ^ 0x5bd1e9955bd1e995ull);
  hi = (hi & ~0xf000ull) | 0x4000ull;                         // version 4
  lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

std::string BuildTp2Body(std::span<const Click> clicks, const PayloadOptions& options) {
  const std::string sent = std::to_string(options.sent_ms != 0 ? options.sent_ms : common::NowMs());
  std::string out;
  out.reserve(128 + clicks.size() * 380);
  out += "{\"schema\":\"";
  out += kTp2Schema;
  out += "\",\"data\":[";
  bool first = true;
  for (const Click& click : clicks) {
    if (!first) out += ',';
    first = false;
    out += '{';
    AppendField(out, "e", "pv", true);
    AppendField(out, "eid", EventId(options.dataset_key, click.row));
    AppendField(out, "aid", options.tenant);
    AppendField(out, "duid", options.user_prefix + click.session);
    // Trackers send a UUID session id; derive one per (dataset, session) so it is stable.
    AppendField(out, "sid", EventId(options.dataset_key + "#session#" + click.session, 0));
    AppendField(out, "url", "https://shop.example/products/" + click.item);
    AppendField(out, "dtm", std::to_string(click.timestamp_ms + options.time_offset_ms));
    AppendField(out, "stm", sent);
    AppendField(out, "p", "web");
    AppendField(out, "tv", "streamrec-replay");
    out += '}';
  }
  out += "]}";
  return out;
}

std::string BuildJsonBody(std::span<const Click> clicks, const PayloadOptions& options) {
  std::string out;
  out.reserve(2 + clicks.size() * 200);
  out += '[';
  bool first = true;
  for (const Click& click : clicks) {
    if (!first) out += ',';
    first = false;
    out += '{';
    AppendField(out, "event_id", EventId(options.dataset_key, click.row), true);
    AppendField(out, "type", "view");
    AppendField(out, "user_id", options.user_prefix + click.session);
    AppendField(out, "item_id", click.item);
    out += ",\"timestamp\":";
    out += std::to_string(click.timestamp_ms + options.time_offset_ms);
    AppendField(out, "tenant", options.tenant);
    out += '}';
  }
  out += ']';
  return out;
}

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

Result<ReplayReport> Replay(const ReplayOptions& options) {
  auto host_port = ParseHostPort(options.url);
  if (!host_port.ok()) return host_port.status();
  if (options.format != "tp2" && options.format != "json") {
    return Status::Invalid(
        "invalid_format", "format must be 'tp2' or 'json', got '" + options.format + "'", "format");
  }
  if (options.batch == 0) return Status::Invalid("invalid_batch", "batch must be >= 1", "batch");
  if (options.rate < 0) return Status::Invalid("invalid_rate", "rate must be >= 0", "rate");
  auto read = ReadClicks(options.file);
  if (!read.ok()) return read.status();
  std::vector<Click> clicks = std::move(read).value();
  if (options.limit != 0 && clicks.size() > options.limit) clicks.resize(options.limit);

  PayloadOptions payload;
  payload.tenant = options.tenant;
  payload.user_prefix = options.user_prefix;
  // Users under another prefix are other shoppers: their events get other ids.
  payload.dataset_key =
      DatasetKey(options.file) + (options.user_prefix.empty() ? "" : "#" + options.user_prefix);
  if (!options.use_dataset_time && !clicks.empty()) {
    payload.time_offset_ms = common::NowMs() - clicks.back().timestamp_ms;
  }
  const bool tp2 = options.format == "tp2";
  const std::string target(tp2 ? kTp2Path : kEventsPath);
  const size_t batches = (clicks.size() + options.batch - 1) / options.batch;
  const size_t threads = std::clamp<size_t>(options.concurrency, 1, std::max<size_t>(batches, 1));

  std::atomic<size_t> next_batch{0};
  std::atomic<uint64_t> events_ok{0}, events_done{0}, requests{0}, errors{0}, answered{0};
  std::mutex mu;  // guards first_error and latencies
  std::string first_error;
  std::vector<double> latencies;
  latencies.reserve(batches);

  const auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    HttpClient client(host_port->first, host_port->second);
    std::vector<double> local;
    while (true) {
      size_t k = next_batch.fetch_add(1);
      if (k >= batches) break;
      const size_t begin = k * options.batch;
      const size_t n = std::min(options.batch, clicks.size() - begin);
      if (options.rate > 0) {
        // Pacing clock shared by all threads: batch k is due when k * batch events would
        // have been sent at the target rate, so the rate holds whatever the concurrency.
        std::this_thread::sleep_until(
            start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(begin) / options.rate)));
      }
      std::span<const Click> slice(clicks.data() + begin, n);
      std::string body = tp2 ? BuildTp2Body(slice, payload) : BuildJsonBody(slice, payload);
      const int64_t t0 = common::MonoNs();
      auto res = client.Request("POST", target, body);
      local.push_back(static_cast<double>(common::MonoNs() - t0) / 1e6);
      requests.fetch_add(1, std::memory_order_relaxed);
      events_done.fetch_add(n, std::memory_order_relaxed);
      std::string failure;
      if (!res.ok()) {
        failure = res.status().ToString();
      } else {
        answered.fetch_add(1, std::memory_order_relaxed);
        if (res->status >= 200 && res->status < 300) {
          events_ok.fetch_add(n, std::memory_order_relaxed);
        } else {
          failure = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 2000);
        }
      }
      if (!failure.empty() && errors.fetch_add(1) == 0) {
        std::lock_guard lock(mu);
        first_error = std::move(failure);
        std::fprintf(stderr, "\nreplay: first error: %s\n", first_error.c_str());
      }
    }
    std::lock_guard lock(mu);
    latencies.insert(latencies.end(), local.begin(), local.end());
  };

  std::mutex progress_mu;
  std::condition_variable progress_cv;
  bool finished = false;
  std::thread progress_thread;
  if (options.progress) {
    progress_thread = std::thread([&] {
      const bool tty = isatty(STDERR_FILENO) != 0;
      const auto period = tty ? std::chrono::milliseconds(200) : std::chrono::seconds(5);
      auto print = [&](bool last) {
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        uint64_t done = events_done.load();
        double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
        double eta = rate > 0 ? static_cast<double>(clicks.size() - done) / rate : 0;
        std::fprintf(stderr, "%s%llu/%zu events (%.0f%%)  %.0f ev/s  errors %llu  ETA %.0fs%s",
                     tty ? "\r" : "", static_cast<unsigned long long>(done), clicks.size(),
                     clicks.empty() ? 100.0 : 100.0 * static_cast<double>(done) / clicks.size(),
                     rate, static_cast<unsigned long long>(errors.load()), eta,
                     tty && !last ? "   " : "\n");
      };
      std::unique_lock lock(progress_mu);
      while (!progress_cv.wait_for(lock, period, [&] { return finished; })) print(false);
      print(true);
    });
  }

  std::vector<std::thread> pool;
  for (size_t i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress_thread.joinable()) {
    {
      std::lock_guard lock(progress_mu);
      finished = true;
    }
    progress_cv.notify_one();
    progress_thread.join();
  }

  if (requests.load() > 0 && answered.load() == 0) {
    return Status::Make(common::Code::kUnavailable, "server_unreachable",
                        "no request got an answer from " + options.url + ": " + first_error);
  }
  ReplayReport report;
  report.events = events_ok.load();
  report.requests = requests.load();
  report.errors = errors.load();
  report.seconds = seconds;
  report.events_per_s = seconds > 0 ? static_cast<double>(report.events) / seconds : 0;
  report.latency_p50_ms = Quantile(latencies, 0.50);
  report.latency_p99_ms = Quantile(latencies, 0.99);
  report.first_error = std::move(first_error);
  return report;
}

std::string FormatReport(const ReplayReport& r) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "events %llu count\nrequests %llu count\nerrors %llu count\nseconds %.3f s\n"
                "events_per_s %.0f 1/s\nlatency_p50_ms %.3f ms\nlatency_p99_ms %.3f ms\n",
                static_cast<unsigned long long>(r.events),
                static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.errors), r.seconds, r.events_per_s,
                r.latency_p50_ms, r.latency_p99_ms);
  return buf;
}

void AddReplayFlags(CLI::App& command, ReplayOptions& options) {
  command.add_option("--url", options.url, "streamrec base URL, e.g. http://127.0.0.1:8080")
      ->required();
  command
      .add_option("--file", options.file,
                  "dataset file (see docs: yoochoose-clicks-*.txt.gz, "
                  "train_sessions.txt.gz, test_sessions_time.csv.gz)")
      ->required();
  command.add_option("--format", options.format, "tp2 (Snowplow) or json (/v1/events)")
      ->check(CLI::IsMember({"tp2", "json"}))
      ->capture_default_str();
  command.add_option("--batch", options.batch, "events per request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--rate", options.rate, "events/s over all connections, 0 = full speed")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("-c,--concurrency", options.concurrency, "parallel keep-alive connections")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--limit", options.limit, "send only the first N events, 0 = all")
      ->capture_default_str();
  command.add_option("--tenant", options.tenant, "tenant (Snowplow aid)")->capture_default_str();
  command.add_flag("!--no-progress", options.progress, "no progress line on stderr");
  command.add_flag("--dataset-time", options.use_dataset_time,
                   "keep the dataset's timestamps instead of shifting the last event to now");
  command.add_option("--user-prefix", options.user_prefix, "prefix for user ids (session ids)");
}

}  // namespace streamrec::tools
