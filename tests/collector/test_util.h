// Helpers shared by the collector tests.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "support/datasets.h"

namespace streamrec::collector::testing {

inline std::string ReadFixture(const std::string& relative) {
  std::ifstream in(streamrec::testing::FixturePath(relative), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

//! Base64 of `in`; url_safe picks the -_ alphabet, pad appends '='.
inline std::string Base64(std::string_view in, bool url_safe = true, bool pad = false) {
  const char* alphabet = url_safe
                             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  while (pad && out.size() % 4 != 0) out.push_back('=');
  return out;
}

}  // namespace streamrec::collector::testing
