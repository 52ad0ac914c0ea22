// `streamrec report`: fetches GET /v1/kpis from a running server, prints a table and
// writes an SVG chart of CTR per hour.
#pragma once

#include <CLI/CLI.hpp>

namespace streamrec::app {

void RegisterReportCommand(CLI::App& cli);
//! Runs `report` when it was parsed; returns the exit code, or -1 when it was not.
int RunReportCommand(CLI::App& cli);

}  // namespace streamrec::app
