// Offline model subcommands: `streamrec evaluate` trains a recommender on a shared dataset's
// training file and scores it with that dataset's protocol; `streamrec train` does the same and
// registers the model as a candidate; `streamrec models list|show|promote|rollback|import` manages
// the registry (src/registry, docs/REGISTRY.md).
#pragma once

#include <CLI/CLI.hpp>

namespace streamrec::app {

void RegisterModelCommands(CLI::App& cli);
//! Runs the model subcommand that was parsed; returns the process exit code, or
//! -1 when no model subcommand was parsed.
int RunModelCommand(CLI::App& cli);

}  // namespace streamrec::app
