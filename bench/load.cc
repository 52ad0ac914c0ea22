// streamrec-load: a closed-loop HTTP load generator. C threads, each with its own keep-alive
// connection, send requests for D seconds or N requests in all, optionally paced to a target
// rate. Prints one figure per line: `<prefix>name value unit`.
//
// Modes:
//   post  POST a fixed body (--body-file) or tp2/JSON batches of --batch real clicks from
//         --dataset with unique event ids (ids get a cycle suffix once the data wraps).
//   recs  GET --recs-path with {user} replaced by users from --users (one per line) or the
//         sessions of --dataset, for serving latency.
//   replay  tools::Replay() of --dataset (what `streamrec replay` does): the whole file once,
//         in time order, with --rate in events/s; prints its report.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "common/clock.h"
#include "tools/datasets.h"
#include "tools/http_client.h"
#include "tools/replay.h"

namespace {

using namespace streamrec::tools;  // NOLINT: a benchmark main

std::string PercentEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "streamrec-load: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"streamrec-load: keep-alive HTTP load generator"};
  std::string url;
  std::string mode = "post";
  size_t connections = 32;
  double duration_s = 10;
  uint64_t max_requests = 0;
  double rate = 0;
  std::string method;
  std::string path;
  std::string body_file;
  std::string dataset;
  std::string format = "tp2";
  size_t batch = 10;
  std::string tenant = "demo";
  std::string user_prefix;
  std::string users_file;
  std::string recs_path = "/v1/recommendations?user_id={user}&n=10";
  std::string prefix;
  app.add_option("--url", url, "target base URL, e.g. http://127.0.0.1:8080")->required();
  app.add_option("--mode", mode, "post, recs or replay")
      ->check(CLI::IsMember({"post", "recs", "replay"}))
      ->capture_default_str();
  app.add_option("-c,--connections", connections, "keep-alive connections (one thread each)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("-d,--duration", duration_s, "seconds to run (when -n is not given)")
      ->capture_default_str();
  app.add_option("-n,--requests", max_requests, "stop after N requests in all");
  app.add_option("--rate", rate, "target requests/s in all, 0 = as fast as possible");
  app.add_option("--method", method, "HTTP method (default POST in post mode, GET in recs)");
  app.add_option("--path", path, "request target in post mode (default by --format)");
  app.add_option("--body-file", body_file, "fixed request body (post mode)");
  app.add_option("--dataset", dataset, "real dataset file for tp2/JSON batches or users");
  app.add_option("--format", format, "tp2 or json batches from --dataset")
      ->check(CLI::IsMember({"tp2", "json"}))
      ->capture_default_str();
  app.add_option("--batch", batch, "events per request from --dataset")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--tenant", tenant)->capture_default_str();
  app.add_option("--user-prefix", user_prefix, "prefix of user ids made from sessions");
  app.add_option("--users", users_file, "file with one user id per line (recs mode)");
  app.add_option("--recs-path", recs_path, "recs target, {user} is replaced")
      ->capture_default_str();
  app.add_option("--prefix", prefix, "prefix for the printed figure names");
  CLI11_PARSE(app, argc, argv);

  if (mode == "replay") {
    ReplayOptions options;
    options.url = url;
    options.file = dataset;
    options.format = format;
    options.batch = batch;
    options.rate = rate;
    options.concurrency = connections;
    options.limit = max_requests;  // -n counts events here
    options.tenant = tenant;
    options.user_prefix = user_prefix;
    auto report = Replay(options);
    if (!report.ok()) return Fail(report.status().ToString());
    std::string text = FormatReport(*report);
    for (size_t start = 0; start < text.size();) {
      size_t end = text.find('\n', start);
      std::printf("%s%s\n", prefix.c_str(), text.substr(start, end - start).c_str());
      start = end + 1;
    }
    return report->errors == 0 ? 0 : 2;
  }

  auto host_port = ParseHostPort(url);
  if (!host_port.ok()) return Fail(host_port.status().ToString());

  // What each request sends: a fixed body, dataset batches, or user lookups.
  std::string fixed_body;
  std::vector<Click> clicks;
  std::vector<std::string> users;
  PayloadOptions payload;
  payload.tenant = tenant;
  payload.user_prefix = user_prefix;
  if (!body_file.empty()) {
    std::ifstream in(body_file, std::ios::binary);
    if (!in) return Fail("cannot read --body-file " + body_file);
    std::stringstream ss;
    ss << in.rdbuf();
    fixed_body = ss.str();
  }
  if (!dataset.empty()) {
    auto read = ReadClicks(dataset);
    if (!read.ok()) return Fail(read.status().ToString());
    clicks = std::move(read).value();
    if (clicks.empty()) return Fail("no clicks in " + dataset);
    payload.dataset_key = DatasetKey(dataset);
    payload.time_offset_ms = streamrec::common::NowMs() - clicks.back().timestamp_ms;
  }
  if (mode == "recs") {
    if (!users_file.empty()) {
      std::ifstream in(users_file);
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) users.push_back(line);
      }
    } else {
      std::unordered_set<std::string> seen;
      for (const Click& c : clicks) {
        if (seen.insert(c.session).second) users.push_back(user_prefix + c.session);
      }
    }
    if (users.empty()) return Fail("recs mode needs --users or --dataset");
    if (method.empty()) method = "GET";
  } else {
    if (method.empty()) method = "POST";
    if (path.empty()) path = std::string(format == "json" ? kEventsPath : kTp2Path);
  }
  const bool use_batches = mode == "post" && body_file.empty() && !clicks.empty();
  const size_t batches = use_batches ? (clicks.size() + batch - 1) / batch : 0;

  std::atomic<uint64_t> next{0}, errors{0}, events{0};
  std::atomic<bool> error_printed{false};
  std::vector<std::vector<double>> latencies(connections);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(max_requests ? 1e9 : duration_s));

  auto worker = [&](size_t id) {
    HttpClient client(host_port->first, host_port->second);
    auto& local = latencies[id];
    std::string body;
    std::string target;
    while (std::chrono::steady_clock::now() < deadline) {
      const uint64_t i = next.fetch_add(1);
      if (max_requests && i >= max_requests) break;
      if (rate > 0) {
        std::this_thread::sleep_until(
            start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(i) / rate)));
      }
      size_t n_events = 0;
      if (mode == "recs") {
        target = recs_path;
        if (size_t at = target.find("{user}"); at != std::string::npos) {
          target.replace(at, 6, PercentEncode(users[i % users.size()]));
        }
      } else if (use_batches) {
        // Each wrap over the data gets its own ids and its own shoppers, so that no request
        // is a duplicate and the number of active users keeps growing.
        const uint64_t cycle = i / batches;
        const size_t begin = (i % batches) * batch;
        n_events = std::min(batch, clicks.size() - begin);
        PayloadOptions p = payload;
        if (cycle) {
          p.dataset_key += "#" + std::to_string(cycle);
          p.user_prefix += "c" + std::to_string(cycle) + "_";
        }
        std::span<const Click> slice(clicks.data() + begin, n_events);
        body = format == "json" ? BuildJsonBody(slice, p) : BuildTp2Body(slice, p);
      }
      const std::string& send_body = use_batches ? body : fixed_body;
      const std::string& send_target = mode == "recs" ? target : path;
      const int64_t t0 = streamrec::common::MonoNs();
      auto res = client.Request(method, send_target, send_body);
      local.push_back(static_cast<double>(streamrec::common::MonoNs() - t0) / 1e6);
      if (res.ok() && res->status >= 200 && res->status < 300) {
        events.fetch_add(n_events, std::memory_order_relaxed);
      } else {
        errors.fetch_add(1, std::memory_order_relaxed);
        if (!error_printed.exchange(true)) {
          std::fprintf(
              stderr, "streamrec-load: first error: %s\n",
              res.ok() ? ("HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 500))
                             .c_str()
                       : res.status().ToString().c_str());
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t i = 0; i < connections; ++i) pool.emplace_back(worker, i);
  for (auto& t : pool) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  const double requests = static_cast<double>(all.size());
  std::printf("%srequests %.0f count\n", prefix.c_str(), requests);
  std::printf("%sreq_per_s %.0f 1/s\n", prefix.c_str(), requests / seconds);
  std::printf("%sevents_per_s %.0f 1/s\n", prefix.c_str(),
              static_cast<double>(events.load()) / seconds);
  std::printf("%slatency_p50_ms %.3f ms\n", prefix.c_str(), Quantile(all, 0.50));
  std::printf("%slatency_p99_ms %.3f ms\n", prefix.c_str(), Quantile(all, 0.99));
  std::printf("%serrors %llu count\n", prefix.c_str(),
              static_cast<unsigned long long>(errors.load()));
  return 0;
}
