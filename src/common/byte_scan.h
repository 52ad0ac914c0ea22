// Finding the first byte of a kind in text, sixteen bytes at a time: per-event paths (tracker
// fields, URLs) scan short texts many times, where a byte-by-byte loop costs several
// instructions per byte.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace streamrec::common {

//! Sixteen bytes as a GCC vector (SSE2 on x86-64, NEON on arm64). Comparisons give 0xff per
//! byte where they hold.
using Bytes16 = uint8_t __attribute__((vector_size(16)));

//! One bit per byte of a comparison result (0xff where it held): bit i for byte i.
inline uint32_t ByteBits(Bytes16 marks) {
#if defined(__SSE2__)
  __m128i v;
  std::memcpy(&v, &marks, sizeof(v));
  return static_cast<uint32_t>(_mm_movemask_epi8(v));
#else
  static_assert(std::endian::native == std::endian::little);
  uint64_t halves[2];
  std::memcpy(halves, &marks, sizeof(halves));
  // Gathers the top bit of each byte into the top byte, in order.
  auto pack = [](uint64_t h) {
    return static_cast<uint32_t>(((h & 0x8080808080808080ULL) * 0x0002040810204081ULL) >> 56);
  };
  return pack(halves[0]) | (pack(halves[1]) << 8);
#endif
}

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
