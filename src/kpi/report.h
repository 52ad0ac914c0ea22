// KPI reports as JSON (GET /v1/kpis), as a text table and as an SVG chart
// (`streamrec report`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "kpi/kpi_tracker.h"

namespace streamrec::kpi {

//! A time as milliseconds since the epoch, or ISO 8601 UTC: "2024-05-01",
//! "2024-05-01T13", "2024-05-01T13:20:00Z" (errors name `field`).
common::Result<int64_t> ParseTime(std::string_view text, std::string_view field);
//! "2024-05-01T13:00:00Z"
std::string FormatTime(int64_t ms);

//! The query of GET /v1/kpis: `to` defaults to now, `from` to 24 h before `to`,
//! group_by to placement. Errors name the parameter.
common::Result<KpiQuery> MakeQuery(std::string tenant, const std::optional<std::string>& from,
                                   const std::optional<std::string>& to,
                                   const std::optional<std::string>& placement,
                                   const std::optional<std::string>& group_by, int64_t now_ms);

//! The response body of GET /v1/kpis (see docs/KPIS.md).
std::string ReportJson(const KpiReport& report);
//! Reads what ReportJson wrote (the report command's input).
common::Result<KpiReport> ParseReportJson(std::string_view text);

//! A fixed-width table: one row per group and a total.
std::string FormatTable(const KpiReport& report);
//! A standalone SVG: bars of impressions and a line of CTR per hour.
std::string RenderCtrSvg(const KpiReport& report);

}  // namespace streamrec::kpi
