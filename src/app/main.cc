// streamrec: one binary, subcommands for the server and its tools.
#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "app/app.h"
#include "app/commands.h"
#include "app/config.h"
#include "app/model_commands.h"
#include "app/report_command.h"
#include "app/scenario_commands.h"

namespace {

using streamrec::app::Config;

// SIGINT / SIGTERM write their number here; Serve waits on the other end. A handler rather than
// sigwait: libraries may start threads before main (OpenBLAS does when LibTorch is linked) and
// would take a blocked-elsewhere signal with its default action, killing the process uncleanly.
int g_stop_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int sig) {
  const int saved_errno = errno;
  const char byte = static_cast<char>(sig);
  [[maybe_unused]] ssize_t written = write(g_stop_pipe[1], &byte, 1);  // async-signal-safe
  errno = saved_errno;
}

//! Routes the first SIGINT or SIGTERM to OnStopSignal (a second one, during a stuck stop, kills
//! as usual); false when the pipe cannot be made.
bool CatchStopSignals() {
  if (pipe2(g_stop_pipe, O_CLOEXEC) != 0) return false;
  // The handler must never block, even on a full pipe.
  fcntl(g_stop_pipe[1], F_SETFL, fcntl(g_stop_pipe[1], F_GETFL) | O_NONBLOCK);
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  return sigaction(SIGINT, &action, nullptr) == 0 && sigaction(SIGTERM, &action, nullptr) == 0;
}

//! Blocks until a stop signal arrives; returns its number.
int WaitForStopSignal() {
  char byte = 0;
  while (read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

int Serve(const std::string& config_path, const std::string& data_dir, const std::string& host,
          int port) {
  Config config;
  if (!config_path.empty()) {
    auto loaded = streamrec::app::LoadConfigFile(config_path);
    if (!loaded.ok()) {
      std::cerr << "error: " << loaded.status().message << "\n";
      return 2;
    }
    config = std::move(loaded).value();
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (!host.empty()) config.server.host = host;
  if (port >= 0) config.server.port = static_cast<uint16_t>(port);

  // Before starting: a signal during start-up then stops the server right after.
  if (!CatchStopSignals()) {
    std::cerr << "error: cannot install signal handlers\n";
    return 1;
  }

  streamrec::app::App app(config);
  if (auto s = app.Start(); !s.ok()) {
    std::cerr << "error: " << s.ToString() << "\n";
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout or socket must not kill the server
  std::printf("streamrec listening on http://%s:%u (data dir %s)\n", config.server.host.c_str(),
              app.port(), config.data_dir.c_str());
  std::fflush(stdout);
  const int sig = WaitForStopSignal();
  spdlog::info("signal {} received, stopping", sig);
  app.Stop();
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr; stdout carries command output (and the "listening" line).
  spdlog::set_default_logger(spdlog::stderr_color_mt("streamrec"));
  CLI::App cli{"streamrec: real-time recommendations for online shops"};
  cli.require_subcommand(1);

  std::string config_path, data_dir, host;
  int port = -1;
  auto* serve = cli.add_subcommand("serve", "run the collector, pipeline and API server");
  serve->add_option("-c,--config", config_path, "YAML config file")->check(CLI::ExistingFile);
  serve->add_option("-d,--data-dir", data_dir, "data directory (overrides the config)");
  serve->add_option("--host", host, "listen address (overrides the config)");
  serve->add_option("-p,--port", port, "listen port, 0 for any free one (overrides the config)");

  auto* config_cmd = cli.add_subcommand("config", "print the default configuration as YAML");
  std::string check_path;
  auto* check_cmd = cli.add_subcommand("check-config", "validate a config file");
  check_cmd->add_option("file", check_path, "YAML config file")->required();

  streamrec::app::RegisterToolCommands(cli);
  streamrec::app::RegisterModelCommands(cli);
  streamrec::app::RegisterReportCommand(cli);
  streamrec::app::RegisterScenarioCommands(cli);

  CLI11_PARSE(cli, argc, argv);

  if (*serve) return Serve(config_path, data_dir, host, port);
  if (*config_cmd) {
    std::cout << streamrec::app::DefaultConfigYaml();
    return 0;
  }
  if (*check_cmd) {
    auto loaded = streamrec::app::LoadConfigFile(check_path);
    if (!loaded.ok()) {
      std::cerr << "error: " << loaded.status().message << "\n";
      return 2;
    }
    std::cout << "ok\n";
    return 0;
  }
  if (int rc = streamrec::app::RunReportCommand(cli); rc >= 0) return rc;
  if (int rc = streamrec::app::RunModelCommand(cli); rc >= 0) return rc;
  if (int rc = streamrec::app::RunScenarioCommand(cli); rc >= 0) return rc;
  return streamrec::app::RunToolCommand(cli);
}
