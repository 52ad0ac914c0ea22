// `streamrec scenario validate FILE` and `streamrec scenario test FILE --events EVENTS.jsonl`:
// offline checks of a scenario file (docs/SCENARIOS.md), no server needed.
#pragma once

#include <CLI/CLI.hpp>

namespace streamrec::app {

void RegisterScenarioCommands(CLI::App& cli);
//! Runs the scenario subcommand that was parsed; returns the process exit code, or -1 when no
//! scenario subcommand was parsed.
int RunScenarioCommand(CLI::App& cli);

}  // namespace streamrec::app
