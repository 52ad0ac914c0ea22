// Finding the first byte of a kind in text, sixteen bytes at a time: per-event paths (tracker
// fields, URLs) scan short texts many times, where a byte-by-byte loop costs several
// instructions per byte.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace streamrec::common {

//! Sixteen bytes as a GCC vector (SSE2 on x86-64, NEON on arm64). Comparisons give 0xff per
//! byte where they hold.
using Bytes16 = uint8_t __attribute__((vector_size(16)));

//! The first position at or after `from` whose byte matches, or text.size(): `block(Bytes16)`
//! marks the matching bytes of sixteen (0xff, as a comparison gives), `byte(unsigned char)`
//! answers for one byte (the tail). Both must agree.
template <typename Block, typename Byte>
size_t FindFirstByte(std::string_view text, size_t from, Block&& block, Byte&& byte) {
  static_assert(std::endian::native == std::endian::little);
  for (; from + 16 <= text.size(); from += 16) {
    Bytes16 bytes;
    std::memcpy(&bytes, text.data() + from, 16);
    const auto marks = block(bytes);
    uint64_t halves[2];  // 0xff per matching byte, in text order
    static_assert(sizeof(marks) == sizeof(halves));
    std::memcpy(halves, &marks, sizeof(halves));
    if (halves[0]) return from + std::countr_zero(halves[0]) / 8;
    if (halves[1]) return from + 8 + std::countr_zero(halves[1]) / 8;
  }
  for (; from < text.size(); ++from) {
    if (byte(static_cast<unsigned char>(text[from]))) return from;
  }
  return text.size();
}

}  // namespace streamrec::common
