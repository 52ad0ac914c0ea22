// Subcommands that are clients of a running server (replay, demo).
#pragma once

#include <CLI/CLI.hpp>

namespace streamrec::app {

void RegisterToolCommands(CLI::App& cli);
//! Runs the tool subcommand that was parsed; returns the process exit code.
int RunToolCommand(CLI::App& cli);

}  // namespace streamrec::app
