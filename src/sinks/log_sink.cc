#include "sinks/log_sink.h"

#include <boost/json.hpp>
#include <cstdio>
#include <mutex>

#include "common/clock.h"
#include "sinks/http_sink.h"

namespace streamrec::sinks {
namespace {

class LogSink : public Sink {
 public:
  LogSink(std::string name, FILE* file, bool owned, common::Registry* metrics)
      : name_(std::move(name)), file_(file), owned_(owned) {
    if (!metrics) {
      own_metrics_ = std::make_unique<common::Registry>();
      metrics = own_metrics_.get();
    }
    written_ = &metrics->GetCounter("streamrec_sink_pushes_ok_total",
                                    "Pushes the destination accepted", {{"sink", name_}});
  }
  ~LogSink() override {
    Stop(std::chrono::milliseconds(0));
    if (owned_) fclose(file_);
  }

  void Push(const Update& u) override {
    boost::json::object rec;
    rec["ts_ms"] = common::NowMs();
    rec["sink"] = name_;
    rec["tenant"] = u.tenant;
    rec["user_id"] = u.user_id;
    rec["model"] = u.model;
    rec["generated_at_ms"] = u.generated_at_ms;
    boost::json::array items;
    for (const auto& item : u.items) {
      items.push_back(boost::json::object{{"id", item.item_id}, {"score", item.score}});
    }
    rec["items"] = std::move(items);
    std::string line = boost::json::serialize(rec);
    line += '\n';
    std::lock_guard lock(mu_);
    if (stopped_) return;
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fflush(file_);
    written_->Inc();
  }

  void Stop(std::chrono::milliseconds) override {
    std::lock_guard lock(mu_);
    if (!stopped_) std::fflush(file_);
    stopped_ = true;
  }

  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  std::mutex mu_;
  FILE* file_;
  bool owned_;
  bool stopped_ = false;
  std::unique_ptr<common::Registry> own_metrics_;
  common::Counter* written_;
};

}  // namespace

common::Result<std::unique_ptr<Sink>> MakeLogSink(const boost::json::object& config, Deps deps) {
  ConfigReader r(config, "");
  r.OnlyKeys({"type", "name", "path"});
  std::string name = r.String("name", "log");
  std::string path = r.String("path", "-");
  if (!r.status().ok()) return r.status();
  FILE* file = stdout;
  bool owned = false;
  if (path != "-") {
    file = std::fopen(path.c_str(), "a");
    if (!file) {
      return common::Status::Invalid("invalid_sink_config",
                                     "path: cannot open '" + path + "' for appending", "path");
    }
    owned = true;
  }
  return std::unique_ptr<Sink>(new LogSink(name, file, owned, deps.metrics));
}

}  // namespace streamrec::sinks
