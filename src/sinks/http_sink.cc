#include "sinks/http_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace streamrec::sinks {
namespace json = boost::json;

// ---- config -----------------------------------------------------------------------------

void ConfigReader::Fail(std::string_view key, const std::string& why) {
  if (!status_.ok()) return;
  std::string field = prefix_ + std::string(key);
  status_ = common::Status::Invalid("invalid_sink_config", field + ": " + why, field);
}

std::string ConfigReader::String(std::string_view key, std::string fallback) {
  auto* v = object_.if_contains(key);
  if (!v) return fallback;
  if (auto* s = v->if_string()) return std::string(*s);
  Fail(key, "expected a string");
  return fallback;
}

int64_t ConfigReader::Int(std::string_view key, int64_t fallback, int64_t min, int64_t max) {
  auto* v = object_.if_contains(key);
  if (!v) return fallback;
  int64_t out = 0;
  if (v->is_int64()) {
    out = v->as_int64();
  } else if (v->is_uint64() && v->as_uint64() <= INT64_MAX) {
    out = static_cast<int64_t>(v->as_uint64());
  } else if (v->is_double() && v->as_double() == static_cast<int64_t>(v->as_double())) {
    out = static_cast<int64_t>(v->as_double());
  } else if (v->is_string()) {  // YAML scalars may arrive as strings
    std::string_view s = v->as_string();
    auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (err != std::errc() || end != s.data() + s.size()) {
      Fail(key, "expected an integer");
      return fallback;
    }
  } else {
    Fail(key, "expected an integer");
    return fallback;
  }
  if (out < min || out > max) {
    Fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return fallback;
  }
  return out;
}

double ConfigReader::Double(std::string_view key, double fallback, double min) {
  auto* v = object_.if_contains(key);
  if (!v) return fallback;
  double out = 0;
  if (v->is_number()) {
    out = v->to_number<double>();
  } else if (v->is_string()) {
    std::string s(v->as_string());
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    if (s.empty() || *end) {
      Fail(key, "expected a number");
      return fallback;
    }
  } else {
    Fail(key, "expected a number");
    return fallback;
  }
  if (out < min) {
    Fail(key, "must be at least " + std::to_string(min));
    return fallback;
  }
  return out;
}

const json::object* ConfigReader::Object(std::string_view key) {
  auto* v = object_.if_contains(key);
  if (!v) return nullptr;
  if (auto* o = v->if_object()) return o;
  Fail(key, "expected an object");
  return nullptr;
}

void ConfigReader::OnlyKeys(std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object_) {
    if (std::find(known.begin(), known.end(), std::string_view(key)) == known.end()) {
      Fail(key, "unknown field");
    }
  }
}

common::Status ReadHttpSinkOptions(const json::object& config, HttpSinkOptions& o) {
  ConfigReader r(config, "");
  o.name = r.String("name", o.type);
  o.timeout = std::chrono::milliseconds(r.Int("timeout_ms", o.timeout.count(), 1, 600'000));
  o.senders = static_cast<int>(r.Int("senders", o.senders, 1, 64));
  if (auto* retry = r.Object("retry")) {
    ConfigReader rr(*retry, "retry.");
    rr.OnlyKeys({"max_attempts", "initial_backoff_ms", "max_backoff_ms", "max_retry_after_ms"});
    o.max_attempts = static_cast<int>(rr.Int("max_attempts", o.max_attempts, 1, 100));
    o.initial_backoff = std::chrono::milliseconds(
        rr.Int("initial_backoff_ms", o.initial_backoff.count(), 0, 3'600'000));
    o.max_backoff =
        std::chrono::milliseconds(rr.Int("max_backoff_ms", o.max_backoff.count(), 0, 3'600'000));
    o.max_retry_after = std::chrono::milliseconds(
        rr.Int("max_retry_after_ms", o.max_retry_after.count(), 0, 3'600'000));
    if (!rr.status().ok()) return rr.status();
  }
  if (auto* co = r.Object("coalesce")) {
    ConfigReader cr(*co, "coalesce.");
    cr.OnlyKeys({"interval_ms", "max_pending_users", "max_tracked_users"});
    o.coalesce.interval_ns =
        cr.Int("interval_ms", o.coalesce.interval_ns / 1'000'000, 0, 86'400'000) * 1'000'000;
    o.coalesce.max_pending_users = static_cast<size_t>(
        cr.Int("max_pending_users", o.coalesce.max_pending_users, 1, 100'000'000));
    o.coalesce.max_tracked_users = static_cast<size_t>(
        cr.Int("max_tracked_users", o.coalesce.max_tracked_users, 1, 1'000'000'000));
    if (!cr.status().ok()) return cr.status();
  }
  if (auto* rate = r.Object("rate")) {
    ConfigReader rr(*rate, "rate.");
    rr.OnlyKeys({"capacity", "restore_per_s", "cost"});
    o.rate_capacity = rr.Double("capacity", o.rate_capacity, 0);
    o.rate_restore_per_s = rr.Double("restore_per_s", o.rate_restore_per_s, 0);
    o.cost = rr.Double("cost", o.cost, 0);
    if (!rr.status().ok()) return rr.status();
  }
  if (auto* dl = r.Object("dead_letter")) {
    ConfigReader dr(*dl, "dead_letter.");
    dr.OnlyKeys({"path"});
    o.dead_letter_path = dr.String("path", "");
    if (!dr.status().ok()) return dr.status();
  }
  o.stop_deadline =
      std::chrono::milliseconds(r.Int("stop_deadline_ms", o.stop_deadline.count(), 0, 600'000));
  return r.status();
}

// ---- classification ---------------------------------------------------------------------

std::optional<double> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    std::string s(value);
    char* end = nullptr;
    double secs = std::strtod(s.c_str(), &end);
    if (*end || secs < 0) return std::nullopt;
    return secs;
  }
  std::tm tm{};  // IMF-fixdate: "Wed, 21 Oct 2015 07:28:00 GMT"
  std::string s(value);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end) return std::nullopt;
  double delta = static_cast<double>(timegm(&tm)) - static_cast<double>(std::time(nullptr));
  return std::max(0.0, delta);
}

PushOutcome ClassifyHttp(const tools::HttpResponse& res) {
  PushOutcome out;
  out.http_status = res.status;
  if (res.status >= 200 && res.status < 300) return out;
  out.reason = "http_" + std::to_string(res.status);
  out.detail = res.body.substr(0, 300);
  if (res.status == 429 || res.status == 408 || res.status >= 500) {
    out.kind = PushOutcome::Kind::kRetry;
    out.throttled = res.status == 429;
    out.retry_after_s = ParseRetryAfter(res.Header("retry-after"));
  } else {
    out.kind = PushOutcome::Kind::kFail;
  }
  return out;
}

// ---- the sink ---------------------------------------------------------------------------

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

SteadyTime FromMonoNs(int64_t ns) { return SteadyTime(std::chrono::nanoseconds(ns)); }

class HttpSink : public Sink {
 public:
  HttpSink(HttpSinkOptions options, Secrets secrets, BuildFn build, ClassifyFn classify, Deps deps,
           FILE* dead_letter_file)
      : options_(std::move(options)),
        secrets_(std::move(secrets)),
        build_(std::move(build)),
        classify_(std::move(classify)),
        deps_(std::move(deps)),
        dead_letter_file_(dead_letter_file),
        coalescer_(options_.coalesce),
        budget_(options_.rate_capacity, options_.rate_restore_per_s) {
    if (!deps_.metrics) {
      own_metrics_ = std::make_unique<common::Registry>();
      deps_.metrics = own_metrics_.get();
    }
    common::Registry& m = *deps_.metrics;
    common::Labels l{{"sink", options_.name}};
    ok_ = &m.GetCounter("streamrec_sink_pushes_ok_total", "Pushes the destination accepted", l);
    failed_ = &m.GetCounter("streamrec_sink_pushes_failed_total",
                            "Updates given up on (not retryable, or out of attempts)", l);
    retried_ = &m.GetCounter("streamrec_sink_retries_total", "Attempts that will be retried", l);
    dead_ = &m.GetCounter("streamrec_sink_dead_letters_total", "Dead-letter records written", l);
    coalesced_ =
        &m.GetCounter("streamrec_sink_coalesced_total",
                      "Updates replaced by a newer one for the same user before sending", l);
    unchanged_ = &m.GetCounter("streamrec_sink_unchanged_total",
                               "Updates skipped: same list as the last push", l);
    throttled_ =
        &m.GetCounter("streamrec_sink_throttled_total", "HTTP 429 or GraphQL THROTTLED answers", l);
    budget_waits_ = &m.GetCounter("streamrec_sink_budget_waits_total",
                                  "Pushes that waited for the rate budget", l);
    evicted_ = &m.GetCounter("streamrec_sink_evicted_total",
                             "Pending users evicted over coalesce.max_pending_users", l);
    dropped_ = &m.GetCounter("streamrec_sink_dropped_total", "Updates pushed after Stop()", l);
    latency_ = &m.GetHistogram("streamrec_sink_push_seconds", "Latency of one push attempt", l);
    m.AddGaugeCallback(
        "streamrec_sink_pending_users", "Users waiting to be pushed", l,
        [this] {
          std::lock_guard lock(mu_);
          return static_cast<double>(coalescer_.pending());
        },
        this);
    for (int i = 0; i < options_.senders; ++i) threads_.emplace_back([this] { SenderLoop(); });
  }

  ~HttpSink() override {
    Stop(options_.stop_deadline);
    deps_.metrics->RemoveCallbacks(this);
    if (dead_letter_file_) fclose(dead_letter_file_);
  }

  const std::string& name() const override { return options_.name; }

  void Push(const Update& update) override {
    if (stopping_.load()) {
      dropped_->Inc();
      return;
    }
    bool evicted = false;
    Coalescer::Offered offered;
    {
      std::lock_guard lock(mu_);
      offered = coalescer_.Offer(update, common::MonoNs(), &evicted);
    }
    if (evicted) evicted_->Inc();
    switch (offered) {
      case Coalescer::Offered::kReplaced:
        coalesced_->Inc();
        break;
      case Coalescer::Offered::kUnchanged:
        unchanged_->Inc();
        break;
      case Coalescer::Offered::kQueued:
        cv_.notify_one();
        break;
    }
  }

  void Stop(std::chrono::milliseconds deadline) override {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      deadline_ns_.store(common::MonoNs() +
                         std::chrono::duration_cast<std::chrono::nanoseconds>(deadline).count());
      stopping_.store(true);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    std::vector<PendingPush> left;
    {
      std::lock_guard lock(mu_);
      left = coalescer_.DrainAll();
    }
    for (auto& push : left) {
      failed_->Inc();
      DeadLetter(push, {PushOutcome::Kind::kFail, "shutdown", 0,
                        "not delivered before the stop "
                        "deadline"});
    }
  }

 private:
  bool PastDeadline() const { return stopping_.load() && common::MonoNs() >= deadline_ns_.load(); }

  void SenderLoop() {
    std::unique_ptr<Transport> transport = MakeTransport(options_.endpoint, options_.timeout);
    std::unique_lock lock(mu_);
    for (;;) {
      if (PastDeadline()) return;
      const bool flush = stopping_.load();
      int64_t next_due = INT64_MAX;
      std::optional<PendingPush> push = coalescer_.TakeDue(common::MonoNs(), flush, &next_due);
      if (!push) {
        if (flush && coalescer_.pending() == 0 && coalescer_.in_flight() == 0) return;
        int64_t until = next_due;
        if (flush) until = std::min(until, deadline_ns_.load());
        if (until == INT64_MAX) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, FromMonoNs(until));
        }
        continue;
      }
      lock.unlock();
      Deliver(*transport, std::move(*push));
      lock.lock();
      cv_.notify_all();  // a retry may be due, or Stop() waits for the last in flight
    }
  }

  double Backoff(int attempts_made) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    double base = static_cast<double>(options_.initial_backoff.count()) / 1000.0;
    double cap = static_cast<double>(options_.max_backoff.count()) / 1000.0;
    double d = std::min(cap, base * std::pow(2.0, std::min(attempts_made - 1, 30)));
    // "Equal jitter": at least half the step, so retries of many users spread out.
    return d * std::uniform_real_distribution<double>(0.5, 1.0)(rng);
  }

  void Deliver(Transport& transport, PendingPush push) {
    bool waited = false;
    if (!budget_.Acquire(
            options_.cost, [this] { return PastDeadline(); }, &waited)) {
      Finish(push, false);
      failed_->Inc();
      DeadLetter(push, {PushOutcome::Kind::kFail, "shutdown", 0,
                        "rate budget not available before the stop deadline"});
      return;
    }
    if (waited) budget_waits_->Inc();
    PushRequest req = build_(push.update);
    int64_t t0 = common::MonoNs();
    auto res = transport.Request(req.method, req.target, req.body, req.headers);
    latency_->Observe(static_cast<double>(common::MonoNs() - t0) / 1e9);
    PushOutcome out;
    if (res.ok()) {
      out = classify_(*res, budget_, options_.cost);
    } else {
      out.kind = PushOutcome::Kind::kRetry;
      out.reason = res.status().reason;
      out.detail = res.status().message;
    }
    ++push.attempt;
    if (out.throttled) throttled_->Inc();
    if (out.kind == PushOutcome::Kind::kOk) {
      ok_->Inc();
      Finish(push, true);
      return;
    }
    if (out.kind == PushOutcome::Kind::kRetry && push.attempt < options_.max_attempts) {
      retried_->Inc();
      double delay = out.retry_after_s
                         ? std::min(*out.retry_after_s,
                                    static_cast<double>(options_.max_retry_after.count()) / 1e3)
                         : Backoff(push.attempt);
      int64_t due = common::MonoNs() + static_cast<int64_t>(delay * 1e9);
      bool requeued;
      {
        std::lock_guard lock(mu_);
        requeued = coalescer_.Retry(std::move(push), due);
      }
      if (!requeued) coalesced_->Inc();  // a newer list for the user replaces it
      return;
    }
    if (out.kind == PushOutcome::Kind::kRetry) {
      out.detail = out.reason + (out.detail.empty() ? "" : ": " + out.detail);
      out.reason = "retries_exhausted";
    }
    failed_->Inc();
    Finish(push, false);
    DeadLetter(push, out);
  }

  void Finish(const PendingPush& push, bool success) {
    std::lock_guard lock(mu_);
    coalescer_.Done(push.key, success);
  }

  void DeadLetter(const PendingPush& push, const PushOutcome& out) {
    json::object rec;
    rec["ts_ms"] = common::NowMs();
    rec["sink"] = options_.name;
    rec["type"] = options_.type;
    rec["tenant"] = push.update.tenant;
    rec["user_id"] = push.update.user_id;
    rec["model"] = push.update.model;
    rec["generated_at_ms"] = push.update.generated_at_ms;
    json::array items;
    for (const auto& item : push.update.items) items.emplace_back(item.item_id);
    rec["items"] = std::move(items);
    rec["attempts"] = push.attempt;
    rec["reason"] = out.reason;
    if (out.http_status) rec["http_status"] = out.http_status;
    if (!out.detail.empty()) rec["detail"] = out.detail.substr(0, 500);
    // The rendered request is never recorded: templates may have put secrets in it.
    std::string line = secrets_.Mask(json::serialize(rec));
    dead_->Inc();
    {
      std::lock_guard lock(dead_letter_mu_);
      if (dead_letter_file_) {
        std::fwrite(line.data(), 1, line.size(), dead_letter_file_);
        std::fputc('\n', dead_letter_file_);
        std::fflush(dead_letter_file_);
      }
    }
    if (deps_.dead_letter) deps_.dead_letter(line);
    Log("sink " + options_.name + ": gave up on user " + push.update.user_id + " (tenant " +
        push.update.tenant + ") after " + std::to_string(push.attempt) +
        " attempt(s): " + out.reason + (out.detail.empty() ? "" : " " + out.detail));
  }

  void Log(const std::string& raw) {
    std::string line = secrets_.Mask(raw);
    if (deps_.log) {
      deps_.log(line);
    } else {
      spdlog::warn("{}", line);
    }
  }

  const HttpSinkOptions options_;
  const Secrets secrets_;
  const BuildFn build_;
  const ClassifyFn classify_;
  Deps deps_;
  std::unique_ptr<common::Registry> own_metrics_;
  std::mutex dead_letter_mu_;
  FILE* dead_letter_file_;

  std::mutex mu_;
  std::condition_variable cv_;
  Coalescer coalescer_;  // guarded by mu_
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> deadline_ns_{INT64_MAX};
  TokenBucket budget_;
  std::vector<std::thread> threads_;

  common::Counter* ok_;
  common::Counter* failed_;
  common::Counter* retried_;
  common::Counter* dead_;
  common::Counter* coalesced_;
  common::Counter* unchanged_;
  common::Counter* throttled_;
  common::Counter* budget_waits_;
  common::Counter* evicted_;
  common::Counter* dropped_;
  common::Histogram* latency_;
};

}  // namespace

common::Result<std::unique_ptr<Sink>> MakeHttpSink(HttpSinkOptions options, Secrets secrets,
                                                   BuildFn build, ClassifyFn classify, Deps deps) {
  FILE* file = nullptr;
  if (!options.dead_letter_path.empty()) {
    file = std::fopen(options.dead_letter_path.c_str(), "a");
    if (!file) {
      return common::Status::Invalid(
          "invalid_sink_config",
          "dead_letter.path: cannot open '" + options.dead_letter_path + "' for appending",
          "dead_letter.path");
    }
  }
  return std::unique_ptr<Sink>(new HttpSink(std::move(options), std::move(secrets),
                                            std::move(build), std::move(classify), std::move(deps),
                                            file));
}

}  // namespace streamrec::sinks
