// Sinks push a user's fresh recommendations to where the shop wants them (a webhook, a
// Shopify metaobject, a log). Push() never blocks the pipeline: it enqueues, and the sink's
// own sender threads deliver with coalescing, a rate budget, retries and a dead letter.
// See docs/SINKS.md for the configuration reference.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "models/item_model.h"

namespace streamrec::sinks {

//! One user's new list, as the pipeline computed it.
struct Update {
  std::string tenant;
  std::string user_id;
  std::vector<models::ScoredItem> items;
  std::string model;
  int64_t generated_at_ms = 0;
};

class Sink {
 public:
  virtual ~Sink() = default;
  //! Non-blocking: enqueues (or coalesces) the update. Thread-safe. After Stop() updates
  //! are dropped and counted.
  virtual void Push(const Update& update) = 0;
  //! Stops accepting, delivers what is pending within `deadline` (ignoring the per-user
  //! interval), dead-letters what is left with reason "shutdown", joins the senders.
  //! Idempotent. NOTE: a request already on the wire may overrun the deadline by up to
  //! the sink's request timeout.
  virtual void Stop(std::chrono::milliseconds deadline) = 0;
  //! The configured name (`name:` in the config, else the type).
  virtual const std::string& name() const = 0;
};

//! Reads an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

//! What a sink needs from the application. Everything is optional.
struct Deps {
  //! Metrics go here; a sink without one keeps a private registry.
  common::Registry* metrics = nullptr;
  //! Defaults to getenv(). Tests inject secrets here.
  EnvLookup env;
  //! Receives each dead-letter JSON line (in addition to `dead_letter.path`, if set).
  std::function<void(const std::string& line)> dead_letter;
  //! Receives every log line (already masked); defaults to spdlog at warn level.
  std::function<void(const std::string& line)> log;
};

//! Builds a sink from its config object (YAML converted to JSON), e.g.
//! `{"type": "webhook", "url": "...", "body": "..."}`. Fails with kInvalidArgument naming
//! the field, or when an `{{env.NAME}}` secret is unset. Starts the sender threads.
common::Result<std::unique_ptr<Sink>> MakeSink(const boost::json::object& config, Deps deps = {});

}  // namespace streamrec::sinks
