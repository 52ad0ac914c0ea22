#include "scenario/plugins.h"

#include <boost/json/serialize.hpp>
#include <string>
#include <utility>

#include "expr/json.h"

namespace streamrec::scenario {

using common::Result;
using common::Status;

std::vector<std::string> ItemModelRegistry::Names() const {
  return {"covisitation", "popularity", "similar"};
}

Result<std::vector<models::ScoredItem>> ItemModelRegistry::Recommend(std::string_view model,
                                                                     const ModelInputs& inputs,
                                                                     size_t n) const {
  if (model == "covisitation") {
    return model_.Recommend(inputs.tenant, inputs.items, n, inputs.exclude).items;
  }
  if (model == "popularity") return model_.Popular(inputs.tenant, n, inputs.exclude);
  if (model == "similar") {
    if (inputs.items.empty()) return std::vector<models::ScoredItem>{};
    return model_.Similar(inputs.tenant, inputs.items.back().item_id, n);
  }
  return Status::Make(common::Code::kNotFound, "unknown_model",
                      "unknown model '" + std::string(model) + "'", "model");
}

void SinkRegistry::Register(std::string type, Factory factory) {
  factories_[std::move(type)] = std::move(factory);
}

bool SinkRegistry::Has(std::string_view type) const { return factories_.contains(type); }

std::vector<std::string> SinkRegistry::Types() const {
  std::vector<std::string> types;
  for (const auto& [name, factory] : factories_) types.push_back(name);
  return types;
}

Result<std::shared_ptr<Sink>> SinkRegistry::Create(std::string_view type,
                                                   const boost::json::object& config) const {
  auto it = factories_.find(type);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [name, factory] : factories_) known += (known.empty() ? "" : ", ") + name;
    return Status::Invalid("unknown_sink",
                           "unknown sink type '" + std::string(type) + "' (known: " + known + ")",
                           "type");
  }
  return it->second(config);
}

SinkRegistry SinkRegistry::WithBuiltins() {
  SinkRegistry registry;
  registry.Register("log", [](const boost::json::object& config) -> Result<std::shared_ptr<Sink>> {
    std::string path = "-";
    for (const auto& [key, value] : config) {
      if (key == "path" && value.is_string()) {
        path = std::string(value.as_string());
      } else {
        return Status::Invalid("invalid_sink", "log sink: unknown or invalid key",
                               std::string(key));
      }
    }
    auto sink = LogSink::Open(path);
    if (!sink.ok()) return sink.status();
    return std::shared_ptr<Sink>(std::move(sink).value());
  });
  registry.Register("null", [](const boost::json::object&) -> Result<std::shared_ptr<Sink>> {
    return std::shared_ptr<Sink>(std::make_shared<NullSink>());
  });
  return registry;
}

Result<std::shared_ptr<LogSink>> LogSink::Open(const std::string& path) {
  if (path == "-") return std::make_shared<LogSink>(stdout, false);
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (!file) return Status::Invalid("invalid_sink", "cannot open '" + path + "'", "path");
  return std::make_shared<LogSink>(file, true);
}

LogSink::~LogSink() {
  if (owned_) std::fclose(file_);
}

namespace {

std::string RecordJson(const SinkRecord& record) {
  boost::json::object line;
  line["scenario"] = record.scenario;
  line["step"] = record.step;
  line["event_id"] = record.event.event_id;
  line["tenant"] = record.event.tenant;
  line["user_id"] = record.event.user_id;
  line["value"] = expr::ToBoostJson(record.value);
  return boost::json::serialize(line);
}

}  // namespace

Status LogSink::Emit(const SinkRecord& record) {
  std::string line = RecordJson(record);
  line += '\n';
  std::lock_guard lock(mu_);
  // Flushed per line: a debugging sink is read while the server runs.
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    return Status::Internal("log sink: write failed");
  }
  return {};
}

Status MemorySink::Emit(const SinkRecord& record) {
  std::string json = expr::ToJson(record.value);
  std::lock_guard lock(mu_);
  if (records_.size() >= max_records_) records_.erase(records_.begin());
  records_.push_back(std::move(json));
  return {};
}

std::vector<std::string> MemorySink::Records() const {
  std::lock_guard lock(mu_);
  return records_;
}

Result<std::vector<models::ScoredItem>> ScoredItemsFromValue(const expr::Value& value) {
  std::vector<models::ScoredItem> items;
  if (value.is_null()) return items;
  if (!value.is_list()) {
    return Status::Invalid("invalid_items", "expected a list of {item_id, score}, got " +
                                                std::string(expr::KindName(value.kind())));
  }
  items.reserve(value.as_list().size());
  for (size_t i = 0; i < value.as_list().size(); ++i) {
    const expr::Value& element = value.as_list()[i];
    models::ScoredItem item;
    if (element.is_string()) {
      item.item_id = element.as_string();
    } else if (element.is_map()) {
      const expr::Value* id = element.Find("item_id");
      const expr::Value* score = element.Find("score");
      if (!id || !id->is_string()) {
        return Status::Invalid("invalid_items", "element has no string item_id",
                               "[" + std::to_string(i) + "]");
      }
      item.item_id = id->as_string();
      if (score && score->is_number()) item.score = score->as_number();
    } else {
      return Status::Invalid("invalid_items", "element is neither a string nor a record",
                             "[" + std::to_string(i) + "]");
    }
    items.push_back(std::move(item));
  }
  return items;
}

namespace {
expr::Value ScoredRecord(const models::ScoredItem& item) {
  return expr::Map{{"item_id", expr::Value(item.item_id)}, {"score", item.score}};
}
}  // namespace

expr::Value ScoredItemsToValue(const std::vector<models::ScoredItem>& items, expr::Value* reuse) {
  expr::List* list = reuse ? reuse->UniqueList() : nullptr;
  if (!list) {
    expr::List fresh;
    fresh.reserve(items.size());
    for (const auto& item : items) fresh.push_back(ScoredRecord(item));
    if (!reuse) return expr::Value(std::move(fresh));
    *reuse = expr::Value(std::move(fresh));
    return *reuse;
  }
  list->resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    expr::Map* record = (*list)[i].UniqueMap();
    if (record && record->size() == 2) {
      (*record)[0].value.AssignString(items[i].item_id);  // into last event's id
      (*record)[1].value = items[i].score;
    } else {
      (*list)[i] = ScoredRecord(items[i]);
    }
  }
  return *reuse;
}

SinkRegistry::Factory StoreSinkFactory(StoreWriter write) {
  class StoreSink : public Sink {
   public:
    explicit StoreSink(StoreWriter write) : write_(std::move(write)) {}
    Status Emit(const SinkRecord& record) override {
      const expr::Value& v = record.value;
      if (!v.is_map())
        return Status::Invalid("invalid_value", "store sink needs a record", "value");
      const expr::Value* user = v.Find("user");
      const expr::Value* items = v.Find("items");
      const expr::Value* model = v.Find("model");
      if (!user || !user->is_string() || user->as_string().empty()) {
        return Status::Invalid("invalid_value", "store sink: no string 'user'", "value.user");
      }
      auto scored = ScoredItemsFromValue(items ? *items : expr::Value());
      if (!scored.ok()) return scored.status();
      return write_(record.event.tenant, user->as_string(), std::move(scored).value(),
                    model && model->is_string() ? std::string_view(model->as_string())
                                                : std::string_view(record.step));
    }

   private:
    StoreWriter write_;
  };
  return [write = std::move(write)](const boost::json::object&) -> Result<std::shared_ptr<Sink>> {
    return std::shared_ptr<Sink>(std::make_shared<StoreSink>(write));
  };
}

}  // namespace streamrec::scenario
