#include "app/report_command.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "kpi/report.h"
#include "tools/http_client.h"

namespace streamrec::app {

namespace {

struct ReportFlags {
  std::string url = "http://127.0.0.1:8080";
  std::string tenant = "default";
  std::string from, to, placement;
  std::string group_by = "placement";
  std::string svg = "kpis.svg";
  std::string api_key;
};
ReportFlags g_report;  // CLI11 writes flags into it; it outlives parsing.

std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

int RunReport() {
  auto host_port = tools::ParseHostPort(g_report.url);
  if (!host_port.ok()) {
    std::cerr << "error: " << host_port.status().message << "\n";
    return 2;
  }
  std::string target =
      "/v1/kpis?tenant=" + Escape(g_report.tenant) + "&group_by=" + Escape(g_report.group_by);
  if (!g_report.from.empty()) target += "&from=" + Escape(g_report.from);
  if (!g_report.to.empty()) target += "&to=" + Escape(g_report.to);
  if (!g_report.placement.empty()) target += "&placement=" + Escape(g_report.placement);
  std::string key = g_report.api_key;
  if (key.empty()) {
    if (const char* env = std::getenv("STREAMREC_API_KEY")) key = env;
  }
  tools::HeaderList headers;
  if (!key.empty()) headers.emplace_back("Authorization", "Bearer " + key);

  tools::HttpClient client(host_port->first, host_port->second);
  auto response = client.Request("GET", target, {}, headers);
  if (!response.ok()) {
    std::cerr << "error: " << response.status().message << "\n";
    return 1;
  }
  if (response->status != 200) {
    std::cerr << "error: GET " << target << " answered " << response->status << ": "
              << response->body << "\n";
    return 1;
  }
  auto report = kpi::ParseReportJson(response->body);
  if (!report.ok()) {
    std::cerr << "error: " << report.status().message << "\n";
    return 1;
  }
  std::cout << kpi::FormatTable(*report);
  if (!g_report.svg.empty()) {
    std::ofstream out(g_report.svg);
    out << kpi::RenderCtrSvg(*report);
    if (!out) {
      std::cerr << "error: cannot write " << g_report.svg << "\n";
      return 1;
    }
    std::cout << "\nchart: " << g_report.svg << "\n";
  }
  return 0;
}

}  // namespace

void RegisterReportCommand(CLI::App& cli) {
  auto* cmd = cli.add_subcommand("report", "print the KPIs of served lists and plot CTR per hour");
  cmd->add_option("--url", g_report.url, "server URL")->capture_default_str();
  cmd->add_option("--tenant", g_report.tenant, "tenant (shop)")->capture_default_str();
  cmd->add_option("--from", g_report.from, "start: ms or ISO 8601 UTC (default: 24 h before --to)");
  cmd->add_option("--to", g_report.to, "end: ms or ISO 8601 UTC (default: now)");
  cmd->add_option("--placement", g_report.placement, "only this placement");
  cmd->add_option("--group-by", g_report.group_by, "placement, model, variant or none")
      ->capture_default_str();
  cmd->add_option("--svg", g_report.svg, "chart file to write (empty: none)")
      ->capture_default_str();
  cmd->add_option("--api-key", g_report.api_key,
                  "API key with the kpis:read scope (default: $STREAMREC_API_KEY)");
}

int RunReportCommand(CLI::App& cli) {
  auto* cmd = cli.get_subcommand("report");
  return *cmd ? RunReport() : -1;
}

}  // namespace streamrec::app
