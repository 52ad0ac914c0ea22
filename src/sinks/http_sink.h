// The push engine behind the webhook and Shopify sinks: per-user coalescing, a shared
// token-bucket budget, a small pool of sender threads, retries with exponential backoff
// and jitter, a dead letter, metrics. What differs per sink type is how an Update becomes
// a request (BuildFn) and how a response is judged (ClassifyFn).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "sinks/coalescer.h"
#include "sinks/sink.h"
#include "sinks/template.h"
#include "sinks/token_bucket.h"
#include "sinks/transport.h"
#include "tools/http_client.h"

namespace streamrec::sinks {

struct PushRequest {
  std::string method = "POST";
  std::string target;  //!< path and query
  std::string body;
  tools::HeaderList headers;
};

struct PushOutcome {
  enum class Kind { kOk, kRetry, kFail };
  Kind kind = Kind::kOk;
  std::string reason;  //!< machine-readable: "http_503", "throttled", "user_errors", ...
  int http_status = 0;
  std::string detail;  //!< short human detail (masked before it is logged)
  std::optional<double> retry_after_s;
  bool throttled = false;  //!< 429 or a GraphQL THROTTLED error
};

struct HttpSinkOptions {
  std::string name;
  std::string type;
  Endpoint endpoint;
  std::chrono::milliseconds timeout{10'000};
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  std::chrono::milliseconds max_retry_after{60'000};  //!< a longer Retry-After is capped
  CoalescerOptions coalesce;
  double rate_capacity = 0;  //!< 0 = no budget
  double rate_restore_per_s = 0;
  double cost = 1;  //!< budget points per request
  int senders = 2;
  std::string dead_letter_path;
  std::chrono::milliseconds stop_deadline{2'000};  //!< used by the destructor
};

using BuildFn = std::function<PushRequest(const Update&)>;
using ClassifyFn =
    std::function<PushOutcome(const tools::HttpResponse&, TokenBucket& budget, double cost)>;

//! Generic HTTP verdict: 2xx ok; 408, 429 and 5xx retried (honouring Retry-After);
//! other statuses fail without retry.
PushOutcome ClassifyHttp(const tools::HttpResponse& response);
//! Retry-After as delta-seconds (fractions accepted) or an HTTP-date; nullopt if neither.
std::optional<double> ParseRetryAfter(std::string_view value);

//! Reads the fields shared by webhook and Shopify sinks (name, timeout_ms, senders, retry,
//! coalesce, rate, dead_letter) into `options`, keeping its defaults for absent fields.
common::Status ReadHttpSinkOptions(const boost::json::object& config, HttpSinkOptions& options);

common::Result<std::unique_ptr<Sink>> MakeHttpSink(HttpSinkOptions options, Secrets secrets,
                                                   BuildFn build, ClassifyFn classify, Deps deps);

//! Reads typed fields from a config object; the first error sticks and names the field.
class ConfigReader {
 public:
  ConfigReader(const boost::json::object& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}
  bool Has(std::string_view key) const { return object_.contains(key); }
  std::string String(std::string_view key, std::string fallback);
  int64_t Int(std::string_view key, int64_t fallback, int64_t min, int64_t max);
  double Double(std::string_view key, double fallback, double min);
  //! nullptr when absent (or not an object: an error).
  const boost::json::object* Object(std::string_view key);
  //! Rejects keys not in `known` (catches typos such as `retires:`).
  void OnlyKeys(std::initializer_list<std::string_view> known);
  const common::Status& status() const { return status_; }

 private:
  void Fail(std::string_view key, const std::string& why);
  const boost::json::object& object_;
  std::string prefix_;
  common::Status status_;
};

}  // namespace streamrec::sinks
