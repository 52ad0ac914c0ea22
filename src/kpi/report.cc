#include "kpi/report.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>

namespace streamrec::kpi {

namespace json = boost::json;
using common::Status;

namespace {

constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kMaxRangeMs = 400ll * 24 * kHourMs;

json::object CountsJson(const Counts& c) {
  return {{"impressions", c.impressions},
          {"clicks", c.clicks},
          {"add_to_carts", c.add_to_carts},
          {"purchases", c.purchases},
          {"revenue", c.revenue},
          {"ctr", c.Ctr()},
          {"add_to_cart_rate", c.AddToCartRate()},
          {"conversion_rate", c.ConversionRate()}};
}

json::array SeriesJson(const std::vector<HourPoint>& series) {
  json::array out;
  out.reserve(series.size());
  for (const auto& p : series) {
    auto o = CountsJson(p.counts);
    o["hour"] = p.hour_ms;
    o["hour_iso"] = FormatTime(p.hour_ms);
    out.push_back(std::move(o));
  }
  return out;
}

uint64_t U64(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64()) return static_cast<uint64_t>(std::max<int64_t>(0, v->as_int64()));
  if (v->is_double()) return static_cast<uint64_t>(std::max(0.0, v->as_double()));
  return 0;
}
int64_t I64(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return 0;
}
double Double(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<double>() : 0;
}
Counts CountsFrom(const json::object& o) {
  return {U64(o, "impressions"), U64(o, "clicks"), U64(o, "add_to_carts"), U64(o, "purchases"),
          Double(o, "revenue")};
}
std::vector<HourPoint> SeriesFrom(const json::value* v) {
  std::vector<HourPoint> out;
  if (!v || !v->is_array()) return out;
  for (const auto& p : v->as_array()) {
    if (p.is_object()) out.push_back({I64(p.as_object(), "hour"), CountsFrom(p.as_object())});
  }
  return out;
}

std::string Percent(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%%", rate * 100);
  return buf;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  auto r = std::from_chars(s.data() + pos, s.data() + pos + n, *out);
  return r.ec == std::errc() && r.ptr == s.data() + pos + n;
}

}  // namespace

common::Result<int64_t> ParseTime(std::string_view text, std::string_view field) {
  auto bad = [&] {
    return Status::Invalid("invalid_parameter",
                           std::string(field) +
                               " must be milliseconds since the epoch or an ISO 8601 UTC time "
                               "such as 2024-05-01T13:00:00Z",
                           std::string(field));
  };
  if (text.empty()) return bad();
  if (text.find('-') == std::string_view::npos) {
    int64_t ms = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return bad();
    return ms;
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!Digits(text, 0, 4, &y) || text.size() < 10 || text[4] != '-' || !Digits(text, 5, 2, &mo) ||
      text[7] != '-' || !Digits(text, 8, 2, &d)) {
    return bad();
  }
  std::string_view rest = text.substr(10);
  if (!rest.empty() && rest.back() == 'Z') rest.remove_suffix(1);
  if (!rest.empty()) {
    if (rest[0] != 'T' && rest[0] != ' ') return bad();
    if (!Digits(rest, 1, 2, &h)) return bad();
    if (rest.size() > 3 && (rest[3] != ':' || !Digits(rest, 4, 2, &mi))) return bad();
    if (rest.size() > 6 && (rest[6] != ':' || !Digits(rest, 7, 2, &s) || rest.size() != 9)) {
      return bad();
    }
    if (rest.size() != 3 && rest.size() != 6 && rest.size() != 9) return bad();
  }
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return bad();
  auto tp = sys_days(ymd) + hours(h) + minutes(mi) + seconds(s);
  return duration_cast<milliseconds>(tp.time_since_epoch()).count();
}

std::string FormatTime(int64_t ms) {
  using namespace std::chrono;
  sys_time<milliseconds> tp{milliseconds(ms)};
  auto day = floor<days>(tp);
  year_month_day ymd(day);
  hh_mm_ss hms(floor<seconds>(tp - day));
  char buf[40];
  std::snprintf(
      buf, sizeof(buf), "%04d-%02u-%02uT%02lld:%02lld:%02lldZ", int(ymd.year()),
      unsigned(ymd.month()), unsigned(ymd.day()), static_cast<long long>(hms.hours().count()),
      static_cast<long long>(hms.minutes().count()), static_cast<long long>(hms.seconds().count()));
  return buf;
}

common::Result<KpiQuery> MakeQuery(std::string tenant, const std::optional<std::string>& from,
                                   const std::optional<std::string>& to,
                                   const std::optional<std::string>& placement,
                                   const std::optional<std::string>& group_by, int64_t now_ms) {
  KpiQuery q;
  q.tenant = std::move(tenant);
  q.to_ms = now_ms;
  if (to && !to->empty()) {
    auto t = ParseTime(*to, "to");
    if (!t.ok()) return t.status();
    q.to_ms = *t;
  }
  q.from_ms = q.to_ms - 24 * kHourMs;
  if (from && !from->empty()) {
    auto f = ParseTime(*from, "from");
    if (!f.ok()) return f.status();
    q.from_ms = *f;
  }
  if (q.from_ms >= q.to_ms) {
    return Status::Invalid("invalid_parameter", "from must be before to", "from");
  }
  if (q.to_ms - q.from_ms > kMaxRangeMs) {
    return Status::Invalid("invalid_parameter", "from..to may span at most 400 days", "from");
  }
  if (placement && !placement->empty()) q.placement = *placement;
  if (group_by) {
    auto g = ParseGroupBy(*group_by);
    if (!g) {
      return Status::Invalid("invalid_parameter",
                             "group_by must be placement, model, variant or none", "group_by");
    }
    q.group_by = *g;
  }
  return q;
}

std::string ReportJson(const KpiReport& r) {
  json::object body;
  body["tenant"] = r.query.tenant;
  body["from"] = r.query.from_ms;
  body["to"] = r.query.to_ms;
  body["from_iso"] = FormatTime(r.query.from_ms);
  body["to_iso"] = FormatTime(r.query.to_ms);
  if (r.query.placement) body["placement"] = *r.query.placement;
  const std::string group_by(GroupByName(r.query.group_by));
  body["group_by"] = group_by;
  body["totals"] = CountsJson(r.totals);
  json::array groups;
  for (const auto& g : r.groups) {
    auto o = CountsJson(g.totals);
    o["key"] = g.key;
    if (r.query.group_by != GroupBy::kNone) o[group_by] = g.key;
    o["series"] = SeriesJson(g.series);
    groups.push_back(std::move(o));
  }
  body["groups"] = std::move(groups);
  body["series"] = SeriesJson(r.series);
  return json::serialize(body);
}

common::Result<KpiReport> ParseReportJson(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return Status::Invalid("invalid_json", "not a KPI report", "body");
  const auto& o = v.as_object();
  KpiReport r;
  if (const auto* t = o.if_contains("tenant"); t && t->is_string()) r.query.tenant = t->as_string();
  r.query.from_ms = I64(o, "from");
  r.query.to_ms = I64(o, "to");
  if (const auto* p = o.if_contains("placement"); p && p->is_string()) {
    r.query.placement = std::string(p->as_string());
  }
  if (const auto* g = o.if_contains("group_by"); g && g->is_string()) {
    r.query.group_by = ParseGroupBy(g->as_string()).value_or(GroupBy::kNone);
  }
  if (const auto* t = o.if_contains("totals"); t && t->is_object()) {
    r.totals = CountsFrom(t->as_object());
  }
  r.series = SeriesFrom(o.if_contains("series"));
  if (const auto* groups = o.if_contains("groups"); groups && groups->is_array()) {
    for (const auto& g : groups->as_array()) {
      if (!g.is_object()) continue;
      const auto& go = g.as_object();
      KpiGroup out;
      if (const auto* k = go.if_contains("key"); k && k->is_string()) out.key = k->as_string();
      out.totals = CountsFrom(go);
      out.series = SeriesFrom(go.if_contains("series"));
      r.groups.push_back(std::move(out));
    }
  }
  return r;
}

std::string FormatTable(const KpiReport& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "KPIs of tenant %s, %s .. %s%s%s\n\n", r.query.tenant.c_str(),
                FormatTime(r.query.from_ms).c_str(), FormatTime(r.query.to_ms).c_str(),
                r.query.placement ? ", placement " : "",
                r.query.placement ? r.query.placement->c_str() : "");
  out += line;
  const std::string head(r.query.group_by == GroupBy::kNone ? "group"
                                                            : GroupByName(r.query.group_by));
  std::snprintf(line, sizeof(line), "%-24s %11s %8s %8s %8s %9s %8s %9s %12s\n", head.c_str(),
                "impressions", "clicks", "CTR", "carts", "cart rate", "orders", "conv.", "revenue");
  out += line;
  auto row = [&](const std::string& name, const Counts& c) {
    std::snprintf(line, sizeof(line), "%-24.24s %11llu %8llu %8s %8llu %9s %8llu %9s %12.2f\n",
                  name.c_str(), static_cast<unsigned long long>(c.impressions),
                  static_cast<unsigned long long>(c.clicks), Percent(c.Ctr()).c_str(),
                  static_cast<unsigned long long>(c.add_to_carts),
                  Percent(c.AddToCartRate()).c_str(), static_cast<unsigned long long>(c.purchases),
                  Percent(c.ConversionRate()).c_str(), c.revenue);
    out += line;
  };
  for (const auto& g : r.groups) row(g.key, g.totals);
  out += std::string(105, '-') + "\n";
  row("total", r.totals);
  return out;
}

std::string RenderCtrSvg(const KpiReport& r) {
  constexpr int kWidth = 800, kHeight = 360, kLeft = 60, kRight = 60, kTop = 40, kBottom = 50;
  const int plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const auto& s = r.series;
  double max_ctr = 0;
  uint64_t max_imp = 0;
  for (const auto& p : s) {
    max_ctr = std::max(max_ctr, p.counts.Ctr());
    max_imp = std::max(max_imp, p.counts.impressions);
  }
  if (max_ctr <= 0) max_ctr = 0.01;
  if (max_imp == 0) max_imp = 1;
  const size_t n = std::max<size_t>(s.size(), 1);
  const double step = double(plot_w) / double(n);
  auto x_of = [&](size_t i) { return kLeft + step * (double(i) + 0.5); };
  auto y_ctr = [&](double ctr) { return kTop + plot_h * (1 - ctr / max_ctr); };

  std::string out;
  char buf[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof(buf), fmt, args...);
    out += buf;
  };
  add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n",
      kWidth, kHeight, kWidth, kHeight);
  std::string title = "CTR per hour, tenant " + r.query.tenant;
  if (r.query.placement) title += ", placement " + *r.query.placement;
  add("<title>%s</title>\n", Escape(title).c_str());
  add("<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", kWidth, kHeight);
  add("<text x=\"%d\" y=\"22\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", kLeft,
      Escape(title).c_str());
  // Axes, gridlines and labels.
  for (int i = 0; i <= 4; ++i) {
    double y = kTop + plot_h * i / 4.0;
    add("<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", kLeft, y,
        kLeft + plot_w, y);
    add("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#c0392b\">%s</text>\n", kLeft - 6,
        y + 4, Percent(max_ctr * (4 - i) / 4).c_str());
    add("<text x=\"%d\" y=\"%.1f\" fill=\"#2c7fb8\">%llu</text>\n", kLeft + plot_w + 6, y + 4,
        static_cast<unsigned long long>(max_imp * (4 - i) / 4));
  }
  add("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", kLeft, kTop + plot_h,
      kLeft + plot_w, kTop + plot_h);
  // Impression bars.
  for (size_t i = 0; i < s.size(); ++i) {
    double h = plot_h * double(s[i].counts.impressions) / double(max_imp);
    add("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#a6cee3\">"
        "<title>%s: %llu impressions, %llu clicks</title></rect>\n",
        x_of(i) - step * 0.4, kTop + plot_h - h, step * 0.8, h, FormatTime(s[i].hour_ms).c_str(),
        static_cast<unsigned long long>(s[i].counts.impressions),
        static_cast<unsigned long long>(s[i].counts.clicks));
  }
  // CTR line.
  if (!s.empty()) {
    out += "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < s.size(); ++i) {
      add("%.1f,%.1f ", x_of(i), y_ctr(s[i].counts.Ctr()));
    }
    out += "\"/>\n";
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i].counts.impressions == 0) continue;
      add("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#c0392b\"><title>%s CTR %s</title>"
          "</circle>\n",
          x_of(i), y_ctr(s[i].counts.Ctr()), FormatTime(s[i].hour_ms).c_str(),
          Percent(s[i].counts.Ctr()).c_str());
    }
  }
  // Hour labels: at most ~12.
  const size_t every = std::max<size_t>(1, (s.size() + 11) / 12);
  for (size_t i = 0; i < s.size(); i += every) {
    std::string t = FormatTime(s[i].hour_ms);  // 2024-05-01T13:00:00Z
    add("<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x_of(i), kTop + plot_h + 16,
        t.substr(11, 5).c_str());
    add("<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#777\">%s</text>\n", x_of(i),
        kTop + plot_h + 30, t.substr(5, 5).c_str());
  }
  add("<text x=\"%d\" y=\"%d\" fill=\"#c0392b\">— CTR</text>\n", kLeft, kHeight - 6);
  add("<text x=\"%d\" y=\"%d\" fill=\"#2c7fb8\">■ impressions</text>\n", kLeft + 70, kHeight - 6);
  out += "</svg>\n";
  return out;
}

}  // namespace streamrec::kpi
