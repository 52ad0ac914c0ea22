#include "app/commands.h"

#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <thread>

#include "catalog/import.h"
#include "tools/datasets.h"
#include "tools/http_client.h"
#include "tools/replay.h"

namespace streamrec::app {

namespace {

namespace json = boost::json;

tools::ReplayOptions g_replay;  // CLI11 writes flags into these; they outlive parsing.
size_t g_demo_users = 5;

int RunReplay() {
  auto report = tools::Replay(g_replay);
  if (!report.ok()) {
    std::cerr << "error: " << report.status().message << "\n";
    return 1;
  }
  std::cout << tools::FormatReport(*report);
  return report->errors == 0 ? 0 : 1;
}

common::Result<json::value> GetJson(tools::HttpClient& client, const std::string& target) {
  auto r = client.Request("GET", target);
  if (!r.ok()) return r.status();
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  if (ec || r->status != 200) {
    return common::Status::Internal("GET " + target + " answered " + std::to_string(r->status) +
                                    ": " + r->body);
  }
  return v;
}

//! Waits until the server's processed count stops moving (the pipeline caught up).
void WaitForPipeline(tools::HttpClient& client) {
  int64_t last = -1;
  int stable = 0;
  for (int i = 0; i < 300 && stable < 3; ++i) {
    auto health = GetJson(client, "/healthz");
    int64_t now = health.ok() ? health->at("processed").to_number<int64_t>() : -1;
    stable = now == last ? stable + 1 : 0;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int RunDemo() {
  int rc = RunReplay();
  if (rc != 0) return rc;
  auto host_port = tools::ParseHostPort(g_replay.url);
  if (!host_port.ok()) return 1;
  tools::HttpClient client(host_port->first, host_port->second);
  WaitForPipeline(client);

  // Shoppers with the longest sessions among the last replayed ones make a readable demo.
  tools::ReadOptions read;
  read.limit = g_replay.limit;
  auto clicks = tools::ReadClicks(g_replay.file, read);
  if (!clicks.ok()) return 1;
  std::map<std::string, size_t> length;
  std::vector<std::string> order;
  for (const auto& c : *clicks) {
    if (length[c.session]++ == 0) order.push_back(c.session);
  }
  std::vector<std::string> users;
  for (auto it = order.rbegin(); it != order.rend() && users.size() < g_demo_users; ++it) {
    if (length[*it] >= 4) users.push_back(*it);
  }
  std::cout << "\nRecommendations for " << users.size() << " shoppers (tenant "
            << g_replay.tenant << "):\n";
  for (const auto& session : users) {
    std::string user = g_replay.user_prefix + session;
    auto history = GetJson(client, "/v1/users/" + user + "/history?tenant=" + g_replay.tenant);
    auto recs = GetJson(client, "/v1/recommendations?n=10&user_id=" + user +
                                    "&tenant=" + g_replay.tenant);
    if (!history.ok() || !recs.ok()) {
      std::cout << "  " << user << ": "
                << (history.ok() ? recs.status() : history.status()).message << "\n";
      continue;
    }
    std::cout << "\n  user " << user << "\n    viewed:     ";
    const auto& h = history->at("history").as_array();
    size_t from = h.size() > 8 ? h.size() - 8 : 0;
    for (size_t i = from; i < h.size(); ++i) std::cout << std::string_view(h[i].at("item_id").as_string()) << " ";
    std::cout << "\n    recommended (" << std::string_view(recs->at("model").as_string()) << "): ";
    for (const auto& item : recs->at("items").as_array()) {
      std::cout << std::string_view(item.at("item_id").as_string()) << " ";
    }
    std::cout << "\n";
  }
  return 0;
}

CLI::App* g_replay_cmd = nullptr;
CLI::App* g_demo_cmd = nullptr;
CLI::App* g_catalog_import_cmd = nullptr;

struct CatalogImportArgs {
  std::string url = "http://127.0.0.1:8080";
  std::string tenant = "default";
  std::string file;
  std::string key_env = "STREAMREC_ADMIN_KEY";
  size_t batch = 1000;
} g_catalog;

//! Parses a catalog file here (CSV, JSONL, JSON, Shopify products.json) and upserts it into
//! a running server with PUT /v1/items in batches, so nothing needs the server stopped.
int RunCatalogImport() {
  auto items = catalog::ParseCatalogFile(g_catalog.tenant, g_catalog.file);
  if (!items.ok()) {
    std::cerr << "error: " << items.status().message << "\n";
    return 1;
  }
  auto host_port = tools::ParseHostPort(g_catalog.url);
  if (!host_port.ok()) {
    std::cerr << "error: " << host_port.status().message << "\n";
    return 2;
  }
  const char* key = std::getenv(g_catalog.key_env.c_str());
  tools::HeaderList headers = {{"Content-Type", "application/json"}};
  if (key && *key) headers.emplace_back("Authorization", std::string("Bearer ") + key);
  tools::HttpClient client(host_port->first, host_port->second);
  const std::string target = "/v1/items?tenant=" + g_catalog.tenant;
  size_t sent = 0;
  for (size_t at = 0; at < items->size(); at += g_catalog.batch) {
    json::array batch;
    for (size_t i = at; i < std::min(items->size(), at + g_catalog.batch); ++i) {
      batch.push_back(catalog::ItemToJson((*items)[i]));
    }
    auto r = client.Request("PUT", target, json::serialize(batch), headers);
    if (!r.ok() || r->status != 200) {
      std::cerr << "error: PUT " << target << " after " << sent << " items: "
                << (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().message)
                << "\n";
      return 1;
    }
    sent += batch.size();
  }
  std::cout << "imported " << sent << " items into tenant " << g_catalog.tenant << "\n";
  return 0;
}

}  // namespace

void RegisterToolCommands(CLI::App& cli) {
  g_replay_cmd = cli.add_subcommand(
      "replay", "send a dataset to a running server as Snowplow tp2 batches or native JSON");
  tools::AddReplayFlags(*g_replay_cmd, g_replay);
  g_demo_cmd = cli.add_subcommand(
      "demo", "replay a dataset into a running server, then print a few shoppers' lists");
  tools::AddReplayFlags(*g_demo_cmd, g_replay);
  g_demo_cmd->add_option("--users", g_demo_users, "how many shoppers to show");

  auto* catalog = cli.add_subcommand("catalog", "catalog tools");
  g_catalog_import_cmd = catalog->add_subcommand(
      "import", "import a CSV, JSONL, JSON or Shopify products.json file into a running server");
  g_catalog_import_cmd->add_option("file", g_catalog.file, "catalog file")
      ->required()
      ->check(CLI::ExistingFile);
  g_catalog_import_cmd->add_option("--url", g_catalog.url, "streamrec base URL")
      ->capture_default_str();
  g_catalog_import_cmd->add_option("--tenant", g_catalog.tenant)->capture_default_str();
  g_catalog_import_cmd->add_option("--key-env", g_catalog.key_env,
                                   "environment variable holding an API key with catalog:write")
      ->capture_default_str();
  g_catalog_import_cmd->add_option("--batch", g_catalog.batch, "items per request")
      ->check(CLI::Range(1, 10000));
}

int RunToolCommand(CLI::App& cli) {
  if (g_replay_cmd && *g_replay_cmd) return RunReplay();
  if (g_demo_cmd && *g_demo_cmd) return RunDemo();
  if (g_catalog_import_cmd && *g_catalog_import_cmd) return RunCatalogImport();
  std::cerr << cli.help();
  return 2;
}

}  // namespace streamrec::app
