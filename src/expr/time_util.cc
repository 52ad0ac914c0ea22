#include "expr/time_util.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace streamrec::expr {
namespace {

using namespace std::chrono;

// Parses exactly `n` digits at `pos`.
bool Digits(std::string_view s, size_t& pos, int n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

std::optional<int64_t> ParseIsoTime(std::string_view s) {
  size_t pos = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  int64_t frac_ms = 0;
  if (!Digits(s, pos, 4, y) || pos >= s.size() || s[pos++] != '-' || !Digits(s, pos, 2, mo) ||
      pos >= s.size() || s[pos++] != '-' || !Digits(s, pos, 2, d)) {
    return std::nullopt;
  }
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  int64_t offset_min = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return std::nullopt;
    ++pos;
    if (!Digits(s, pos, 2, h) || pos >= s.size() || s[pos++] != ':' || !Digits(s, pos, 2, mi)) {
      return std::nullopt;
    }
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!Digits(s, pos, 2, sec)) return std::nullopt;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        int scale = 100, n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          frac_ms += (s[pos] - '0') * scale;
          scale /= 10;
          ++pos;
          ++n;
        }
        if (n == 0) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
    if (pos < s.size()) {
      char c = s[pos];
      if ((c == 'Z' || c == 'z') && pos + 1 == s.size()) {
        ++pos;
      } else if (c == '+' || c == '-') {
        ++pos;
        int oh, om = 0;
        if (!Digits(s, pos, 2, oh)) return std::nullopt;
        if (pos < s.size() && s[pos] == ':') ++pos;
        if (pos < s.size() && !Digits(s, pos, 2, om)) return std::nullopt;
        if (oh > 23 || om > 59) return std::nullopt;
        offset_min = (c == '+' ? 1 : -1) * (oh * 60 + om);
      }
      if (pos != s.size()) return std::nullopt;
    }
  }
  int64_t days = sys_days(ymd).time_since_epoch().count();
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
  return secs * 1000 + frac_ms;
}

std::string FormatIsoTime(int64_t ms) {
  int64_t days = FloorDiv(ms, 86400000);
  int64_t rem = ms - days * 86400000;
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(rem / 3600000),
                int(rem / 60000 % 60), int(rem / 1000 % 60), int(rem % 1000));
  return buf;
}

std::string FormatTime(int64_t ms, std::string_view pattern) {
  int64_t secs = FloorDiv(ms, 1000);
  int millis = static_cast<int>(ms - secs * 1000);
  // %L is ours (strftime has no milliseconds): substitute it before strftime sees it.
  std::string pat;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'L') {
      char b[8];
      std::snprintf(b, sizeof(b), "%03d", millis);
      pat += b;
      ++i;
    } else if (pattern[i] == '%' && i + 1 < pattern.size()) {
      pat += pattern.substr(i, 2);
      ++i;
    } else {
      pat += pattern[i];
    }
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string out(pat.size() * 4 + 64, '\0');
  size_t n = std::strftime(out.data(), out.size(), pat.c_str(), &tm);
  out.resize(n);
  return out;
}

}  // namespace streamrec::expr
