// Shared helpers of the scenario tests: events, a fake model registry, a memory sink registry.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "scenario/host.h"
#include "scenario/scenario.h"

namespace streamrec::scenario::testing {

inline events::Event MakeEvent(std::string user, std::string item, int64_t ts,
                               events::EventType type = events::EventType::kView,
                               std::string tenant = "shop1", std::string properties = "") {
  static int next_id = 0;
  events::Event e;
  e.event_id = "e" + std::to_string(++next_id);
  e.tenant = std::move(tenant);
  e.user_id = std::move(user);
  e.item_id = std::move(item);
  e.type = type;
  e.timestamp_ms = ts;
  e.collector_ms = ts;
  e.properties = std::move(properties);
  return e;
}

//! "echo" returns the input items reversed with scores 1..n; "fail" always fails.
class FakeModels : public ModelRegistry {
 public:
  std::vector<std::string> Names() const override { return {"echo", "fail", "pop"}; }
  common::Result<std::vector<models::ScoredItem>> Recommend(std::string_view model,
                                                            const ModelInputs& in,
                                                            size_t n) const override {
    if (model == "fail") return common::Status::Internal("model down");
    std::vector<models::ScoredItem> out;
    if (model == "pop") {
      for (const char* id : {"p1", "p2", "p3"}) {
        bool excluded = false;
        for (const auto& x : in.exclude) excluded |= x == id;
        if (!excluded && out.size() < n) out.push_back({id, 0.5});
      }
      return out;
    }
    for (size_t i = in.items.size(); i-- > 0 && out.size() < n;) {
      out.push_back({in.items[i].item_id + "@" + std::to_string(in.items[i].timestamp_ms),
                     static_cast<double>(out.size() + 1)});
    }
    return out;
  }
};

//! Sinks `memory` (shared instance, for assertions) and `fail`, plus the built-ins.
struct TestSinks {
  std::shared_ptr<MemorySink> memory = std::make_shared<MemorySink>();
  SinkRegistry registry = SinkRegistry::WithBuiltins();
  TestSinks() {
    registry.Register("memory",
                      [this](const boost::json::object&) -> common::Result<std::shared_ptr<Sink>> {
                        return std::shared_ptr<Sink>(memory);
                      });
    registry.Register(
        "fail", [](const boost::json::object& config) -> common::Result<std::shared_ptr<Sink>> {
          class Failing : public Sink {
            common::Status Emit(const SinkRecord&) override {
              return common::Status::Internal("sink down");
            }
          };
          if (config.contains("bad")) {
            return common::Status::Invalid("invalid_sink", "bad is not allowed", "bad");
          }
          return std::shared_ptr<Sink>(std::make_shared<Failing>());
        });
  }
};

}  // namespace streamrec::scenario::testing
