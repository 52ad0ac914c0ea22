#include "app/scenario_commands.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "collector/decode.h"
#include "expr/json.h"
#include "models/item_model.h"
#include "scenario/scenario.h"

namespace streamrec::app {
namespace {

namespace sc = streamrec::scenario;

struct Args {
  std::string file;
  std::string events;
  bool quiet = false;
};

Args g_args;
CLI::App* g_scenario_cmd = nullptr;
CLI::App* g_validate_cmd = nullptr;
CLI::App* g_test_cmd = nullptr;

constexpr std::string_view kPayloadDataPrefix =
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/";

bool ReadFile(const std::string& path, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *text = buffer.str();
  return true;
}

// Sink types the live server knows; offline they are dry runs (the trace shows each value).
sc::SinkRegistry DryRunSinks() {
  sc::SinkRegistry registry;
  for (const char* type : {"log", "null", "store", "webhook", "shopify"}) {
    registry.Register(type,
                      [](const boost::json::object&) -> common::Result<std::shared_ptr<sc::Sink>> {
                        return std::shared_ptr<sc::Sink>(std::make_shared<sc::NullSink>());
                      });
  }
  return registry;
}

int Validate() {
  std::string text;
  if (!ReadFile(g_args.file, &text)) {
    std::cerr << "error: cannot read " << g_args.file << "\n";
    return 2;
  }
  models::ItemModel model({});
  sc::ItemModelRegistry models(model);
  sc::SinkRegistry sinks = DryRunSinks();
  auto errors = sc::Scenario::Validate(text, &models, &sinks);
  for (const auto& e : errors) std::cout << g_args.file << ": " << e.ToString() << "\n";
  if (!errors.empty()) {
    std::cout << errors.size() << " error" << (errors.size() == 1 ? "" : "s") << "\n";
    return 1;
  }
  auto scenario = sc::Scenario::Load(text, &models, &sinks);
  std::cout << "ok: " << (*scenario)->name() << " version " << (*scenario)->version() << ", "
            << (*scenario)->node_count() - 1 << " steps\n";
  return 0;
}

// One line: a Snowplow tp2 payload or native JSON (an event or an array of them), decoded as the
// collector does with `mapping`. Bad rows go to stderr.
void DecodeLine(const std::string& line, size_t line_no, const collector::MappingOptions& mapping,
                std::vector<events::Event>* out) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  boost::system::error_code ec;
  boost::json::value json = boost::json::parse(line, ec);
  if (ec) {
    std::cerr << "line " << line_no << ": invalid JSON: " << ec.message() << "\n";
    return;
  }
  const boost::json::object* object = json.if_object();
  const boost::json::value* schema = object ? object->if_contains("schema") : nullptr;
  bool snowplow = schema && schema->is_string() && schema->as_string().starts_with(kPayloadDataPrefix);
  auto decoded = snowplow ? collector::DecodeSnowplowPost(line, now, mapping)
                          : collector::DecodeNativeJson(line, now, mapping);
  if (!decoded.ok()) {
    std::cerr << "line " << line_no << ": " << decoded.status().message << "\n";
    return;
  }
  for (const auto& bad : decoded->bad_rows) {
    std::cerr << "line " << line_no << ": bad row " << bad.reason
              << (bad.field.empty() ? "" : " (" + bad.field + ")") << ": " << bad.message << "\n";
  }
  for (auto& event : decoded->events) out->push_back(std::move(event));
}

int Test() {
  std::string text;
  if (!ReadFile(g_args.file, &text)) {
    std::cerr << "error: cannot read " << g_args.file << "\n";
    return 2;
  }
  std::ifstream in(g_args.events);
  if (!in) {
    std::cerr << "error: cannot read " << g_args.events << "\n";
    return 2;
  }
  models::ItemModel model({.popular_refresh_ms = 0});
  sc::ItemModelRegistry models(model);
  sc::SinkRegistry sinks = DryRunSinks();
  auto scenario = sc::Scenario::Load(text, &models, &sinks);
  if (!scenario.ok()) {
    std::cout << scenario.status().message << "\n";
    return 1;
  }

  // Tracker fields kept as the server's collector keeps them for this scenario.
  collector::MappingOptions mapping;
  mapping.keep_raw = (*scenario)->reads_raw();
  mapping.raw_fields = (*scenario)->raw_fields();
  std::vector<events::Event> inputs;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    DecodeLine(line, line_no, mapping, &inputs);
  }

  // The model learns from the same events first (as a replay would have it), each item event
  // with the user's previous items as its co-visitation window.
  std::map<std::string, std::vector<models::WindowItem>> windows;
  for (const auto& event : inputs) {
    auto& window = windows[event.tenant + "/" + event.user_id];
    model.Observe(event, window);
    if (!event.item_id.empty()) {
      window.push_back({event.item_id, event.timestamp_ms});
      if (window.size() > 20) window.erase(window.begin());
    }
  }
  sc::Runner runner(*scenario);
  size_t sunk = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& event = inputs[i];
    sc::StepTrace trace = runner.Run(event, {.trace = true});
    sunk += trace.sinks > 0;
    if (g_args.quiet) continue;
    std::cout << "event " << i + 1 << " " << event.event_id << " " << event.tenant << "/"
              << event.user_id << " " << events::EventTypeName(event.type) << " "
              << (event.item_id.empty() ? "-" : event.item_id) << " @" << event.timestamp_ms
              << "\n";
    for (const auto& entry : trace.entries) {
      std::printf(
          "  %-14s %-8s %s\n", std::string(entry.step).c_str(), sc::OutcomeName(entry.outcome),
          entry.outcome == sc::Outcome::kError
              ? entry.error.c_str()
              : (entry.type == sc::StepType::kSource ? "" : expr::ToJson(entry.output).c_str()));
    }
    std::fflush(stdout);
  }
  std::cout << "\n" << inputs.size() << " events, " << sunk << " reached a sink\n";
  std::printf("%-16s %8s %8s %8s %8s %8s\n", "step", "in", "out", "errors", "dropped", "late");
  auto counts = runner.Counts();
  for (size_t n = 0; n < counts.size(); ++n) {
    std::printf("%-16s %8llu %8llu %8llu %8llu %8llu\n", (*scenario)->node_id(n).c_str(),
                static_cast<unsigned long long>(counts[n].in),
                static_cast<unsigned long long>(counts[n].out),
                static_cast<unsigned long long>(counts[n].errors),
                static_cast<unsigned long long>(counts[n].dropped),
                static_cast<unsigned long long>(counts[n].late));
  }
  return 0;
}

}  // namespace

void RegisterScenarioCommands(CLI::App& cli) {
  g_scenario_cmd = cli.add_subcommand("scenario", "validate or test a YAML scenario offline");
  g_scenario_cmd->require_subcommand(1);
  g_validate_cmd = g_scenario_cmd->add_subcommand("validate", "print every error of a scenario");
  g_validate_cmd->add_option("file", g_args.file, "scenario YAML file")->required();
  g_test_cmd = g_scenario_cmd->add_subcommand(
      "test", "run events through a scenario and print each step's output per event");
  g_test_cmd->add_option("file", g_args.file, "scenario YAML file")->required();
  g_test_cmd
      ->add_option("--events", g_args.events, "JSON lines: native events, or Snowplow tp2 payloads")
      ->required();
  g_test_cmd->add_flag("-q,--quiet", g_args.quiet, "only the per-step counts");
}

int RunScenarioCommand(CLI::App& cli) {
  if (!g_scenario_cmd || !*g_scenario_cmd) return -1;
  if (*g_validate_cmd) return Validate();
  if (*g_test_cmd) return Test();
  return -1;
}

}  // namespace streamrec::app
