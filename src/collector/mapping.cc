#include "collector/mapping.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace streamrec::collector {

namespace {

constexpr std::string_view kItemPlaceholder = "{item}";

// Path of a URL without scheme, authority, query or fragment.
std::string_view UrlPath(std::string_view url) {
  url = url.substr(0, url.find('#'));
  url = url.substr(0, url.find('?'));
  size_t authority = std::string_view::npos;
  if (size_t scheme = url.find("://"); scheme != std::string_view::npos && url.find('/') > scheme) {
    authority = scheme + 3;
  } else if (url.starts_with("//")) {
    authority = 2;
  }
  if (authority != std::string_view::npos) {
    size_t slash = url.find('/', authority);
    return slash == std::string_view::npos ? std::string_view() : url.substr(slash);
  }
  return url;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view segment = path.substr(0, slash);
    if (!segment.empty()) out.push_back(segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<int8_t, 256> MakeBase64Table() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 26; ++i) {
    table['A' + i] = static_cast<int8_t>(i);
    table['a' + i] = static_cast<int8_t>(26 + i);
  }
  for (int i = 0; i < 10; ++i) table['0' + i] = static_cast<int8_t>(52 + i);
  table['+'] = table['-'] = 62;
  table['/'] = table['_'] = 63;
  return table;
}

constexpr std::array<int8_t, 256> kBase64Table = MakeBase64Table();

}  // namespace

UrlPattern::UrlPattern(std::string_view pattern) {
  for (std::string_view raw : SplitPath(pattern)) {
    Segment segment;
    if (size_t pos = raw.find(kItemPlaceholder); pos != std::string_view::npos && !valid_) {
      segment.is_item = true;
      segment.literal = PercentDecode(raw.substr(0, pos));
      segment.suffix = PercentDecode(raw.substr(pos + kItemPlaceholder.size()));
      item_index_ = segments_.size();
      valid_ = true;
    } else {
      segment.literal = PercentDecode(raw);
    }
    segments_.push_back(std::move(segment));
  }
}

std::optional<std::string> UrlPattern::Match(std::string_view url) const {
  if (!valid_) return std::nullopt;
  std::vector<std::string_view> raw = SplitPath(UrlPath(url));
  if (raw.size() < segments_.size()) return std::nullopt;
  std::vector<std::string> path;
  path.reserve(raw.size());
  for (std::string_view s : raw) path.push_back(PercentDecode(s));

  for (size_t start = 0; start + segments_.size() <= path.size(); ++start) {
    bool matched = true;
    for (size_t i = 0; i < segments_.size() && matched; ++i) {
      const Segment& want = segments_[i];
      const std::string& got = path[start + i];
      if (!want.is_item) {
        matched = got == want.literal;
      } else {
        matched = got.size() > want.literal.size() + want.suffix.size() &&
                  got.starts_with(want.literal) && got.ends_with(want.suffix);
      }
    }
    if (matched) {
      const Segment& item = segments_[item_index_];
      const std::string& got = path[start + item_index_];
      return got.substr(item.literal.size(), got.size() - item.literal.size() - item.suffix.size());
    }
  }
  return std::nullopt;
}

bool DecodeBase64(std::string_view in, std::string* out) {
  out->clear();
  size_t padding = 0;
  while (!in.empty() && in.back() == '=' && padding < 2) {
    in.remove_suffix(1);
    ++padding;
  }
  if (in.size() % 4 == 1) return false;
  if (padding > 0 && (in.size() + padding) % 4 != 0) return false;
  out->resize(in.size() / 4 * 3 + (in.size() % 4 == 0 ? 0 : in.size() % 4 - 1));
  char* dst = out->data();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int8_t v = kBase64Table[static_cast<uint8_t>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *dst++ = static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

std::string PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::optional<int64_t> ParseMillis(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    return std::nullopt;
  }
  return value;
}

bool TenantAllowed(const MappingOptions& options, std::string_view tenant) {
  return options.allowed_tenants.empty() ||
         std::find(options.allowed_tenants.begin(), options.allowed_tenants.end(), tenant) !=
             options.allowed_tenants.end();
}

std::string TruncatePayload(std::string_view payload) {
  return std::string(payload.substr(0, kMaxBadRowPayload));
}

}  // namespace streamrec::collector
