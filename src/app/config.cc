#include "app/config.h"

#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <cstdlib>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace streamrec::app {

namespace {

using common::Status;

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

//! Reads the keys of one mapping into typed targets, rejecting unknown keys.
class Section {
 public:
  Section(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {}

  template <typename T>
  Section& Get(const std::string& key, T& target, double scale = 1) {
    known_.push_back(key);
    if (!status_.ok() || !node_ || !node_[key]) return *this;
    try {
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        double v = node_[key].template as<double>();
        if (v < 0) throw YAML::Exception(YAML::Mark::null_mark(), "must not be negative");
        target = static_cast<T>(v * scale);
      } else {
        target = node_[key].template as<T>();
      }
    } catch (const YAML::Exception& e) {
      status_ = Status::Invalid("invalid_config", "bad value for " + Path(key) + ": " + e.msg,
                                Path(key));
    }
    return *this;
  }

  Status Finish() {
    if (!status_.ok() || !node_) return status_;
    if (!node_.IsMap()) return Status::Invalid("invalid_config", path_ + " must be a mapping", path_);
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      auto key = it->first.as<std::string>();
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        return Status::Invalid("invalid_config", "unknown key " + Path(key), Path(key));
      }
    }
    return status_;
  }

 private:
  std::string Path(const std::string& key) const { return path_ + "." + key; }
  YAML::Node node_;
  std::string path_;
  std::vector<std::string> known_;
  Status status_;
};

//! YAML to JSON for sections handed to components that take JSON (sinks): scalars become
//! booleans or numbers when they read as such, else strings.
boost::json::value YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      boost::json::object o;
      for (auto it = node.begin(); it != node.end(); ++it) {
        o[it->first.as<std::string>()] = YamlToJson(it->second);
      }
      return o;
    }
    case YAML::NodeType::Sequence: {
      boost::json::array a;
      for (const auto& item : node) a.push_back(YamlToJson(item));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "!") return boost::json::string(text);  // quoted in the YAML
      if (text == "true" || text == "false") return text == "true";
      char* end = nullptr;
      long long i = std::strtoll(text.c_str(), &end, 10);
      if (!text.empty() && *end == '\0') return static_cast<int64_t>(i);
      double d = std::strtod(text.c_str(), &end);
      if (!text.empty() && *end == '\0') return d;
      return boost::json::string(text);
    }
    default:
      return nullptr;
  }
}

}  // namespace

common::Result<Config> ParseConfig(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::Invalid("invalid_config", "config is not valid YAML: " + e.msg, "config");
  }
  Config c;
  if (!root || root.IsNull()) return c;
  if (!root.IsMap()) return Status::Invalid("invalid_config", "config must be a mapping", "config");

  auto& mapping = c.api.mapping;
  std::map<std::string, std::function<Status(const YAML::Node&)>> sections = {
      {"data_dir",
       [&](const YAML::Node& n) {
         c.data_dir = n.as<std::string>();
         return Status::Ok();
       }},
      {"server",
       [&](const YAML::Node& n) {
         return Section(n, "server")
             .Get("host", c.server.host)
             .Get("port", c.server.port)
             .Get("threads", c.server.threads)
             .Get("max_body_bytes", c.server.max_body_bytes)
             .Get("idle_timeout_seconds", c.server.idle_timeout_s)
             .Get("cors_origins", c.api.cors_origins)
             .Finish();
       }},
      {"collector",
       [&](const YAML::Node& n) {
         return Section(n, "collector")
             .Get("allowed_tenants", mapping.allowed_tenants)
             .Get("default_tenant", mapping.default_tenant)
             .Get("max_batch_events", mapping.max_batch_events)
             .Get("item_url_pattern", mapping.item_url_pattern)
             .Get("item_fields", mapping.item_fields)
             .Get("keep_raw", mapping.keep_raw)
             .Finish();
       }},
      {"log",
       [&](const YAML::Node& n) {
         return Section(n, "log")
             .Get("partitions", c.log.partitions)
             .Get("retention_hours", c.log.retention_ms, kHour)
             .Get("retention_max_events_per_partition", c.log.retention_max_events_per_partition)
             .Get("max_group_events", c.log.max_group_events)
             .Get("sync", c.log.sync)
             .Get("dedup_window_hours", c.storage.dedup_ttl_ms, kHour)
             .Finish();
       }},
      {"pipeline",
       [&](const YAML::Node& n) {
         return Section(n, "pipeline")
             .Get("window_minutes", c.pipeline.window_ms, kMinute)
             .Get("window_max_items", c.pipeline.window_max_items)
             .Get("history_max_events", c.pipeline.history_max_events)
             .Get("session_gap_minutes", c.pipeline.session_gap_ms, kMinute)
             .Get("user_ttl_days", c.pipeline.user_ttl_ms, kDay)
             .Get("rec_count", c.pipeline.rec_count)
             .Get("recs_stale_minutes", c.pipeline.recs_stale_ms, kMinute)
             .Get("checkpoint_interval_ms", c.pipeline.checkpoint_interval_ms)
             .Get("workers", c.pipeline.workers)
             .Get("max_batch", c.pipeline.max_batch)
             .Finish();
       }},
      {"models",
       [&](const YAML::Node& n) {
         return Section(n, "models")
             .Get("max_items", c.models.max_items)
             .Get("max_neighbors", c.models.max_neighbors)
             .Get("popularity_half_life_hours", c.models.popularity_half_life_ms, kHour)
             .Get("recency_decay", c.models.recency_decay)
             .Get("serve_model", c.serve_model)
             .Get("registry", c.model_registry)
             .Get("ab_version", c.ab_version)
             .Get("ab_percent", c.ab_percent)
             .Finish();
       }},
      {"storage",
       [&](const YAML::Node& n) {
         return Section(n, "storage")
             .Get("block_cache_mb", c.storage.block_cache_bytes, 1 << 20)
             .Get("write_buffer_mb", c.storage.write_buffer_bytes, 1 << 20)
             .Get("bad_rows_retention_hours", c.bad_rows_retention_ms, kHour)
             .Finish();
       }},
      {"sinks",
       [&](const YAML::Node& n) {
         if (!n.IsSequence()) {
           return Status::Invalid("invalid_config", "sinks must be a list of sink configs",
                                  "sinks");
         }
         for (const auto& sink : n) {
           auto v = YamlToJson(sink);
           if (!v.is_object()) {
             return Status::Invalid("invalid_config", "each sink must be a mapping", "sinks");
           }
           c.sinks.push_back(std::move(v.as_object()));
         }
         return Status::Ok();
       }},
      {"scenario_file",
       [&](const YAML::Node& n) {
         c.scenario_file = n.as<std::string>();
         return Status::Ok();
       }},
      {"rules_file",
       [&](const YAML::Node& n) {
         c.rules_file = n.as<std::string>();
         return Status::Ok();
       }},
      {"auth",
       [&](const YAML::Node& n) {
         auto& a = c.api.auth;
         return Section(n, "auth")
             .Get("admin_keys_enabled", a.admin_keys_enabled)
             .Get("admin_key_env", a.admin_key_env)
             .Get("key_rotation_grace_hours", a.key_rotation_grace_ms, kHour)
             .Get("allow_anonymous_duids", a.allow_anonymous_duids)
             .Get("require_user_token_for_logged_in", a.require_user_token_for_logged_in)
             .Get("user_token_secret_env", a.user_token_secret_env)
             .Get("user_token_previous_secret_env", a.user_token_previous_secret_env)
             .Get("rate_limit_per_s", a.rate_limit.rate_per_s)
             .Get("rate_limit_burst", a.rate_limit.burst)
             .Get("rate_limit_clients", a.rate_limit.max_entries)
             .Finish();
       }},
      {"serving",
       [&](const YAML::Node& n) {
         return Section(n, "serving")
             .Get("default_n", c.api.default_n)
             .Get("max_n", c.api.max_n)
             .Finish();
       }},
  };
  for (auto it = root.begin(); it != root.end(); ++it) {
    auto key = it->first.as<std::string>();
    auto section = sections.find(key);
    if (section == sections.end()) {
      return Status::Invalid("invalid_config", "unknown config section " + key, key);
    }
    try {
      auto s = section->second(it->second);
      if (!s.ok()) return s;
    } catch (const YAML::Exception& e) {
      return Status::Invalid("invalid_config", "bad value for " + key + ": " + e.msg, key);
    }
  }
  if (c.log.partitions == 0) {
    return Status::Invalid("invalid_config", "log.partitions must be >= 1", "log.partitions");
  }
  if (c.pipeline.workers == 0) {
    return Status::Invalid("invalid_config", "pipeline.workers must be >= 1", "pipeline.workers");
  }
  if (c.api.default_n == 0 || c.api.default_n > c.api.max_n) {
    return Status::Invalid("invalid_config", "serving.default_n must be in 1..max_n",
                           "serving.default_n");
  }
  if (mapping.item_url_pattern.find("{item}") == std::string::npos) {
    return Status::Invalid("invalid_config", "collector.item_url_pattern must contain {item}",
                           "collector.item_url_pattern");
  }
  return c;
}

common::Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Invalid("invalid_config", "cannot read config file " + path, "config");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str());
}

std::string DefaultConfigYaml() {
  return R"(# streamrec configuration; every key is optional and shows its default.
data_dir: data
server:
  host: 127.0.0.1          # 0.0.0.0 to accept other machines
  port: 8080
  threads: 2               # HTTP I/O threads
  max_body_bytes: 1048576
  idle_timeout_seconds: 60
  cors_origins: []         # shop origins allowed to call from the browser, e.g. https://shop.example
collector:
  allowed_tenants: []      # Snowplow app ids (aid) accepted; empty = any
  default_tenant: default
  max_batch_events: 500
  item_url_pattern: /products/{item}
  item_fields: [item_id, sku, product_id, id]
  keep_raw: false          # keep all Snowplow fields for `#input.raw` (else only those the scenario reads)
log:
  partitions: 8            # fixed when the data dir is created
  retention_hours: 168
  retention_max_events_per_partition: 20000000
  max_group_events: 20000
  sync: true               # fsync every group commit before acknowledging
  dedup_window_hours: 24   # a retried event id is recognised this long
pipeline:
  window_minutes: 5
  window_max_items: 20
  history_max_events: 50
  session_gap_minutes: 30
  user_ttl_days: 30
  rec_count: 20
  recs_stale_minutes: 10
  checkpoint_interval_ms: 30000  # replay after a crash covers at most this much
  workers: 1
  max_batch: 1024
models:
  max_items: 500000
  max_neighbors: 50
  popularity_half_life_hours: 24
  recency_decay: 0.7
  serve_model: ""          # a registry model (vsknn, sknn, sasrec) to compute lists; "" = co-visitation
  registry: ""             # default <data_dir>/models
  ab_version: 0            # A/B: serve this version to ab_percent of users (stable by user id)
  ab_percent: 0
storage:
  block_cache_mb: 160
  write_buffer_mb: 32
  bad_rows_retention_hours: 168
serving:
  default_n: 10
  max_n: 100
rules_file: ""             # business rules per tenant and placement (docs/RULES.md)
scenario_file: ""          # a YAML scenario run on every event; with a `store` sink its lists are served (docs/SCENARIOS.md)
sinks: []                  # push each new list: webhook, shopify, log (docs/SINKS.md)
auth:
  admin_keys_enabled: true # catalog, rules, GDPR, keys and bad-rows endpoints need an API key
  admin_key_env: STREAMREC_ADMIN_KEY   # the first admin key comes from this variable
  key_rotation_grace_hours: 24
  allow_anonymous_duids: true          # user_id= reads need no token
  require_user_token_for_logged_in: false   # customer_id= reads need an HMAC user token
  user_token_secret_env: STREAMREC_USER_TOKEN_SECRET
  user_token_previous_secret_env: STREAMREC_USER_TOKEN_SECRET_PREVIOUS
  rate_limit_per_s: 20     # per client IP on public reads; 0 turns it off
  rate_limit_burst: 40
  rate_limit_clients: 100000
)";
}

}  // namespace streamrec::app
