#include "app/commands.h"

#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <thread>

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

}  // namespace

void RegisterToolCommands(CLI::App& cli) {
  g_replay_cmd = cli.add_subcommand(
      "replay", "send a dataset to a running server as Snowplow tp2 batches or native JSON");
  tools::AddReplayFlags(*g_replay_cmd, g_replay);
  g_demo_cmd = cli.add_subcommand(
      "demo", "replay a dataset into a running server, then print a few shoppers' lists");
  tools::AddReplayFlags(*g_demo_cmd, g_replay);
  g_demo_cmd->add_option("--users", g_demo_users, "how many shoppers to show");
}

int RunToolCommand(CLI::App& cli) {
  if (g_replay_cmd && *g_replay_cmd) return RunReplay();
  if (g_demo_cmd && *g_demo_cmd) return RunDemo();
  std::cerr << cli.help();
  return 2;
}

}  // namespace streamrec::app
