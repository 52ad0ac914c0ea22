#include "sinks/template.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <ctime>

namespace streamrec::sinks {

std::string JsonQuote(std::string_view s) { return boost::json::serialize(boost::json::string(s)); }

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ItemsJson(const Update& update) {
  std::string out = "[";
  for (size_t i = 0; i < update.items.size(); ++i) {
    if (i) out += ',';
    out += JsonQuote(update.items[i].item_id);
  }
  return out + "]";
}

std::string ItemsScoredJson(const Update& update) {
  std::string out = "[";
  for (size_t i = 0; i < update.items.size(); ++i) {
    if (i) out += ',';
    out += "{\"id\":" + JsonQuote(update.items[i].item_id) +
           ",\"score\":" + boost::json::serialize(boost::json::value(update.items[i].score)) + "}";
  }
  return out + "]";
}

std::string Rfc3339Ms(int64_t ms) {
  time_t secs = static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03dZ", frac);
  return buf;
}

void Secrets::Add(std::string_view value) {
  if (value.empty()) return;
  std::string quoted = JsonQuote(value);
  for (std::string form :
       {std::string(value), quoted.substr(1, quoted.size() - 2), UrlEncode(value)}) {
    if (std::find(values_.begin(), values_.end(), form) == values_.end()) {
      values_.push_back(std::move(form));
    }
  }
  std::sort(values_.begin(), values_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Secrets::Mask(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : values_) {
    for (size_t pos = out.find(secret); pos != std::string::npos; pos = out.find(secret, pos + 3)) {
      out.replace(pos, secret.size(), "***");
    }
  }
  return out;
}

common::Result<Template> Template::Parse(std::string_view text, Kind kind, const EnvLookup& env,
                                         Secrets& secrets, std::string_view field) {
  Template t;
  t.kind_ = kind;
  bool in_string = false;  // JSON lexical state of the literal text so far
  bool escaped = false;
  auto add_literal = [&](std::string_view lit) {
    for (char c : lit) {
      if (escaped) {
        escaped = false;
      } else if (in_string && c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = !in_string;
      }
    }
    if (lit.empty()) return;
    if (!t.segments_.empty() && t.segments_.back().var == Var::kLiteral) {
      t.segments_.back().text.append(lit);
    } else {
      t.segments_.push_back({Var::kLiteral, std::string(lit), false});
    }
  };
  auto invalid = [&](std::string why) {
    return common::Status::Invalid("invalid_template", std::string(field) + ": " + why,
                                   std::string(field));
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      add_literal(text.substr(pos));
      break;
    }
    add_literal(text.substr(pos, open - pos));
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) return invalid("unterminated '{{'");
    std::string_view name = text.substr(open + 2, close - open - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    pos = close + 2;
    Segment seg;
    seg.in_string = in_string;
    if (name.starts_with("env.")) {
      std::string var(name.substr(4));
      std::optional<std::string> value = env ? env(var) : std::nullopt;
      if (!value) {
        return common::Status::Invalid(
            "missing_secret", std::string(field) + ": environment variable " + var + " is not set",
            std::string(field));
      }
      secrets.Add(*value);
      std::string rendered;
      switch (kind) {
        case Kind::kJsonBody: {
          std::string q = JsonQuote(*value);
          rendered = in_string ? q.substr(1, q.size() - 2) : q;
          break;
        }
        case Kind::kUrl:
          rendered = UrlEncode(*value);
          break;
        case Kind::kHeader:
          rendered = *value;
          break;
      }
      // Appended without lexing: the value is data, not template syntax.
      if (!t.segments_.empty() && t.segments_.back().var == Var::kLiteral) {
        t.segments_.back().text += rendered;
      } else {
        t.segments_.push_back({Var::kLiteral, rendered, false});
      }
      continue;
    }
    if (name == "user_id") {
      seg.var = Var::kUserId;
    } else if (name == "tenant") {
      seg.var = Var::kTenant;
    } else if (name == "items_json") {
      seg.var = Var::kItemsJson;
    } else if (name == "items_scored_json") {
      seg.var = Var::kItemsScoredJson;
    } else if (name == "model") {
      seg.var = Var::kModel;
    } else if (name == "generated_at") {
      seg.var = Var::kGeneratedAt;
    } else if (name == "generated_at_ms") {
      seg.var = Var::kGeneratedAtMs;
    } else {
      return invalid("unknown placeholder '{{" + std::string(name) + "}}'");
    }
    t.segments_.push_back(std::move(seg));
  }
  return t;
}

bool Template::dynamic() const {
  return std::any_of(segments_.begin(), segments_.end(),
                     [](const Segment& s) { return s.var != Var::kLiteral; });
}

std::string Template::Value(const Segment& seg, const Update& u) const {
  std::string raw;
  bool is_json = false;  // raw is already a JSON text (array / number)
  switch (seg.var) {
    case Var::kLiteral:
      return seg.text;
    case Var::kUserId:
      raw = u.user_id;
      break;
    case Var::kTenant:
      raw = u.tenant;
      break;
    case Var::kModel:
      raw = u.model;
      break;
    case Var::kGeneratedAt:
      raw = Rfc3339Ms(u.generated_at_ms);
      break;
    case Var::kGeneratedAtMs:
      raw = std::to_string(u.generated_at_ms);
      is_json = true;
      break;
    case Var::kItemsJson:
      raw = ItemsJson(u);
      is_json = true;
      break;
    case Var::kItemsScoredJson:
      raw = ItemsScoredJson(u);
      is_json = true;
      break;
  }
  switch (kind_) {
    case Kind::kJsonBody:
      if (seg.in_string) {
        std::string q = JsonQuote(raw);
        return q.substr(1, q.size() - 2);
      }
      return is_json ? raw : JsonQuote(raw);
    case Kind::kUrl:
      return UrlEncode(raw);
    case Kind::kHeader:
      std::erase_if(raw, [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
      return raw;
  }
  return raw;
}

std::string Template::Render(const Update& update) const {
  std::string out;
  for (const auto& seg : segments_) out += Value(seg, update);
  return out;
}

}  // namespace streamrec::sinks
