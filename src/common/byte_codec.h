// The little binary codec behind every stored record (events, user state, item
// checkpoints): LEB128 varints, zigzag for signed values, length-prefixed strings and
// little-endian fixed-width numbers. Each record type adds its own version byte.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace streamrec::common {

static_assert(std::endian::native == std::endian::little, "stored records are little-endian");

inline void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void PutSigned(std::string& out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

inline void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

template <typename T>
void PutFixed(std::string& out, T v) {
  static_assert(std::is_arithmetic_v<T>);
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

//! Reads what the Put* functions wrote. Any overrun makes ok() false; reads after a
//! failure yield zeros and empty strings, so callers check ok() once at the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return in_.empty(); }

  uint8_t Byte() {
    if (in_.empty()) return Fail(), 0;
    auto b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) break;
      auto b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail(), 0;
  }
  int64_t Signed() {
    uint64_t u = Varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  //! A length-prefixed string of at most `max_length` bytes.
  std::string String(size_t max_length = SIZE_MAX) { return std::string(StringView(max_length)); }
  //! Like String, as a view into the input.
  std::string_view StringView(size_t max_length = SIZE_MAX) {
    uint64_t n = Varint();
    if (n > in_.size() || n > max_length) return Fail(), std::string_view();
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }
  template <typename T>
  T Fixed() {
    static_assert(std::is_arithmetic_v<T>);
    if (in_.size() < sizeof(T)) return Fail(), T{};
    T v;
    std::memcpy(&v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return v;
  }
  //! An element count that cannot exceed what is left (each element takes a byte or
  //! more), so a corrupt count cannot make the caller allocate without bound.
  size_t Count() {
    uint64_t n = Varint();
    if (n > in_.size()) return Fail(), 0;
    return static_cast<size_t>(n);
  }

 private:
  void Fail() {
    ok_ = false;
    in_ = {};
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace streamrec::common
