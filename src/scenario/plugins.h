// What a scenario calls out to: models (recommend steps), rules (rules steps) and sinks (sink
// steps). Each is an interface so that the app wires the live objects and tests wire fakes;
// every implementation must be safe to call from several pipeline workers at once.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "events/event.h"
#include "expr/value.h"
#include "models/item_model.h"

namespace streamrec::scenario {

// ---------------------------------------------------------------------------------------------
// Models

//! What a recommend step passes to a model (from its `inputs:` expressions).
struct ModelInputs {
  std::string tenant;
  std::string user;
  std::string session_id;
  std::vector<models::WindowItem> items;  //!< oldest first (the user's window)
  std::vector<std::string> exclude;
  int64_t now_ms = 0;  //!< event time of the event being processed
};

class ModelRegistry {
 public:
  virtual ~ModelRegistry() = default;
  //! Model names a recommend step may use; checked at load.
  virtual std::vector<std::string> Names() const = 0;
  //! Best first, at most n. Thread-safe.
  virtual common::Result<std::vector<models::ScoredItem>> Recommend(std::string_view model,
                                                                    const ModelInputs& inputs,
                                                                    size_t n) const = 0;
};

//! Models over one live ItemModel: "covisitation" (neighbours of the window weighted by recency,
//! filled with the tenant's popular items, as the built-in pipeline does), "popularity" and
//! "similar" (neighbours of the newest window item only).
class ItemModelRegistry : public ModelRegistry {
 public:
  //! REQUIRES: `model` outlives this object.
  explicit ItemModelRegistry(const models::ItemModel& model) : model_(model) {}
  std::vector<std::string> Names() const override;
  common::Result<std::vector<models::ScoredItem>> Recommend(std::string_view model,
                                                            const ModelInputs& inputs,
                                                            size_t n) const override;

 private:
  const models::ItemModel& model_;
};

// ---------------------------------------------------------------------------------------------
// Rules

//! The rules engine as seen from a `rules` step (src/rules implements it; the lead adapts).
class RulesHook {
 public:
  virtual ~RulesHook() = default;
  //! Filters / reorders `candidates` for a placement; `context` is the step's `context:` record
  //! (null when absent). Thread-safe.
  virtual common::Result<std::vector<models::ScoredItem>> Apply(
      std::string_view tenant, std::string_view placement,
      const std::vector<models::ScoredItem>& candidates, const expr::Value& context) const = 0;
};

// ---------------------------------------------------------------------------------------------
// Sinks

//! One output of a sink step.
struct SinkRecord {
  std::string_view scenario;
  std::string_view step;
  const events::Event& event;
  //! The step's `value:` expression result; by default a record of every variable set so far.
  const expr::Value& value;
};

class Sink {
 public:
  virtual ~Sink() = default;
  //! Thread-safe. A failure counts as the step's error; the runner goes on.
  virtual common::Status Emit(const SinkRecord& record) = 0;
};

//! Sink types by name. A scenario creates its sinks at load (so config errors are load errors)
//! and keeps them for the life of that version.
class SinkRegistry {
 public:
  //! `config` is the step's `sink:` mapping as JSON (without `type`). An invalid config is an
  //! invalid-argument Status whose field names the key, e.g. field "url".
  using Factory =
      std::function<common::Result<std::shared_ptr<Sink>>(const boost::json::object& config)>;

  void Register(std::string type, Factory factory);
  bool Has(std::string_view type) const;
  std::vector<std::string> Types() const;
  common::Result<std::shared_ptr<Sink>> Create(std::string_view type,
                                               const boost::json::object& config) const;

  //! With the built-in `log` (JSON lines to `path`, default stdout) and `null` sinks.
  static SinkRegistry WithBuiltins();

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

//! JSON line per record: {"scenario","step","event_id","tenant","user_id","value"}.
class LogSink : public Sink {
 public:
  //! "-" is stdout. The file is opened for append.
  static common::Result<std::shared_ptr<LogSink>> Open(const std::string& path);
  explicit LogSink(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  ~LogSink() override;
  common::Status Emit(const SinkRecord& record) override;

 private:
  std::mutex mu_;
  std::FILE* file_;
  bool owned_;
};

class NullSink : public Sink {
 public:
  common::Status Emit(const SinkRecord&) override { return {}; }
};

//! Keeps the values (as JSON) in memory, for tests and `scenario test`; bounded.
class MemorySink : public Sink {
 public:
  explicit MemorySink(size_t max_records = 10'000) : max_records_(max_records) {}
  common::Status Emit(const SinkRecord& record) override;
  std::vector<std::string> Records() const;

 private:
  mutable std::mutex mu_;
  size_t max_records_;
  std::vector<std::string> records_;
};

//! `store`: the value must be a record {user, items: [{item_id, score}], model?} (tenant from the
//! event); `write` stores it for serving. The app binds `write` to its recommendation store.
using StoreWriter =
    std::function<common::Status(std::string_view tenant, std::string_view user,
                                 std::vector<models::ScoredItem> items, std::string_view model)>;
SinkRegistry::Factory StoreSinkFactory(StoreWriter write);

//! Converts a list of {item_id, score} records (a recommend step's output) back to items;
//! invalid argument naming the element otherwise.
common::Result<std::vector<models::ScoredItem>> ScoredItemsFromValue(const expr::Value& value);
//! `items` as a list of {item_id, score} records. With `reuse` (the previous result, kept by the
//! caller), that list's storage is refilled in place where nobody else holds it any more, so a
//! steady stream of events allocates nothing here.
expr::Value ScoredItemsToValue(const std::vector<models::ScoredItem>& items,
                               expr::Value* reuse = nullptr);

}  // namespace streamrec::scenario
