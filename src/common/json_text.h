// JSON string escaping for code that writes JSON text by hand (hot paths, tables of results):
// one implementation so that every writer escapes the same way.
#pragma once

#include <string>
#include <string_view>

namespace streamrec::common {

//! Appends `text` escaped for the inside of a JSON string literal (no quotes added): `"` and
//! `\` get a backslash, control characters their short form or \u00XX; other bytes (UTF-8) as is.
inline void AppendJsonEscaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
}

//! `text` as a JSON string literal, quotes included.
inline std::string JsonQuoted(std::string_view text) {
  std::string out = "\"";
  AppendJsonEscaped(out, text);
  out += '"';
  return out;
}

}  // namespace streamrec::common
