// Thin wrappers over OpenSSL's libcrypto (SHA-256, HMAC-SHA256, RAND_bytes,
// CRYPTO_memcmp) plus base64url, so the rest of auth/ never touches OpenSSL directly.
// No primitive is implemented here.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace streamrec::auth {

using Digest = std::array<uint8_t, 32>;

//! SHA-256 of `data`.
Digest Sha256(std::string_view data);
//! HMAC-SHA256 of `data` under `key`.
Digest HmacSha256(std::string_view key, std::string_view data);
//! `n` bytes from the OpenSSL CSPRNG; kInternal when it is not seeded.
common::Result<std::string> RandomBytes(size_t n);
//! Equality whose running time depends only on the sizes, not on where the bytes differ.
//! Sizes are compared first (they are never secret here).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
bool ConstantTimeEquals(const Digest& a, const Digest& b);

//! RFC 4648 §5 base64url without padding.
std::string Base64UrlEncode(std::string_view bytes);
inline std::string Base64UrlEncode(const Digest& d) {
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}
//! Whether `s` only holds base64url characters (A-Z a-z 0-9 - _).
bool IsBase64Url(std::string_view s);
//! Length of the unpadded base64url text of `n` bytes.
constexpr size_t Base64UrlLength(size_t n) { return (n * 4 + 2) / 3; }

}  // namespace streamrec::auth
