// The reference peer for HTTP benchmarks: answers every request 200 {"ok":true} with
// keep-alive, so `streamrec vs trivial_server` under the same load gives the cost of
// streamrec's own work as a ratio that holds on a noisy machine.
// Prints "listening <port>" on stdout once it accepts connections; stops on SIGINT/SIGTERM.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "tools/mini_http_server.h"

int main(int argc, char** argv) {
  CLI::App app{"trivial_server: HTTP reference peer answering 200 {\"ok\":true}"};
  streamrec::tools::MiniHttpServerOptions options;
  app.add_option("--port,-p", options.port, "port on 127.0.0.1, 0 = pick a free one")
      ->capture_default_str();
  app.add_option("--threads,-t", options.threads, "server threads")->capture_default_str();
  app.add_option("--address", options.address, "listen address")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals in every thread (the server threads inherit the mask) and
  // take them synchronously below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = streamrec::tools::MiniHttpServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "trivial_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("listening %u\n", static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  (*server)->Stop();
  std::fprintf(stderr, "trivial_server: %llu requests on %llu connections\n",
               static_cast<unsigned long long>((*server)->requests()),
               static_cast<unsigned long long>((*server)->connections()));
  return 0;
}
