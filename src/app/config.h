// The YAML config file: one section per component, every key optional (defaults are
// the embedded single-machine setup). Unknown keys are errors, so typos do not pass.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "collector/decode.h"
#include "common/status.h"
#include "log/event_log.h"
#include "models/item_model.h"
#include "pipeline/pipeline.h"
#include "serve/api.h"
#include "serve/http_server.h"
#include "store/store.h"

namespace streamrec::app {

struct Config {
  std::string data_dir = "data";
  serve::ServerOptions server;
  serve::ApiOptions api;  //!< includes the collector mapping
  store::StoreOptions storage;
  log::LogOptions log;
  pipeline::PipelineOptions pipeline;
  models::ItemModelOptions models;
  int64_t bad_rows_retention_ms = 7ll * 24 * 3600 * 1000;
  //! Business rules {tenant: {placement: rules}} loaded at start (YAML), optional.
  std::string rules_file;
  //! A registry model (`streamrec train` / `models promote`) that computes the stored lists
  //! instead of co-visitation, which stays the fallback; empty: co-visitation only.
  std::string serve_model;
  std::string model_registry;  //!< default <data_dir>/models
  int64_t ab_version = 0;      //!< A/B: this version for ab_percent of users (stable hash)
  uint32_t ab_percent = 0;
  //! A YAML scenario run on every processed event (docs/SCENARIOS.md), optional.
  std::string scenario_file;
  //! Where each user's new list is pushed (docs/SINKS.md): webhook, shopify, log.
  std::vector<boost::json::object> sinks;
};

//! Parses YAML text; errors name the key path (e.g. "pipeline.window_minutes").
common::Result<Config> ParseConfig(const std::string& yaml_text);
common::Result<Config> LoadConfigFile(const std::string& path);
//! The defaults as commented YAML (`streamrec config` prints it).
std::string DefaultConfigYaml();

}  // namespace streamrec::app
