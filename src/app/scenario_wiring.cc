#include "app/scenario_wiring.h"

#include "sinks/sink.h"

namespace streamrec::app {

namespace {

//! A scenario sink step feeding a push sink: the step's value is {user?, items, model?}
//! (the store sink's shape) or just the list of {item_id, score}.
class PushSinkAdapter final : public scenario::Sink {
 public:
  explicit PushSinkAdapter(std::unique_ptr<sinks::Sink> sink) : sink_(std::move(sink)) {}
  ~PushSinkAdapter() override { sink_->Stop(std::chrono::seconds(5)); }

  common::Status Emit(const scenario::SinkRecord& record) override {
    sinks::Update update;
    update.tenant = record.event.tenant;
    update.user_id = record.event.user_id;
    update.model = "scenario:" + std::string(record.scenario);
    update.generated_at_ms = record.event.timestamp_ms;
    const expr::Value* list = &record.value;
    if (record.value.is_map()) {
      if (auto* user = record.value.Find("user"); user && user->is_string()) {
        update.user_id = user->as_string();
      }
      if (auto* model = record.value.Find("model"); model && model->is_string()) {
        update.model = model->as_string();
      }
      list = record.value.Find("items");
      if (!list) {
        return common::Status::Invalid("invalid_value", "a push sink needs items in its value",
                                       "value.items");
      }
    }
    auto items = scenario::ScoredItemsFromValue(*list);
    if (!items.ok()) return items.status();
    update.items = std::move(items).value();
    sink_->Push(update);
    return common::Status::Ok();
  }

 private:
  std::unique_ptr<sinks::Sink> sink_;
};

}  // namespace

scenario::SinkRegistry ServerSinks(common::Registry& metrics) {
  auto registry = scenario::SinkRegistry::WithBuiltins();
  for (const char* type : {"webhook", "shopify"}) {
    registry.Register(type, [type, &metrics](const boost::json::object& config)
                                -> common::Result<std::shared_ptr<scenario::Sink>> {
      boost::json::object with_type = config;
      with_type["type"] = type;
      auto sink = sinks::MakeSink(with_type, {.metrics = &metrics});
      if (!sink.ok()) return sink.status();
      return std::shared_ptr<scenario::Sink>(
          std::make_shared<PushSinkAdapter>(std::move(sink).value()));
    });
  }
  registry.Register("store", [](const boost::json::object&)
                                 -> common::Result<std::shared_ptr<scenario::Sink>> {
    return common::Status::Invalid(
        "invalid_scenario",
        "in `streamrec serve` every user's list is stored by the built-in pipeline; the store "
        "sink is for `streamrec scenario test`. Use webhook, shopify or log here",
        "sink.type");
  });
  return registry;
}

}  // namespace streamrec::app
