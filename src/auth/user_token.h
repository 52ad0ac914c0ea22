// Short-lived user tokens for the public read endpoint, minted by the shop's backend for
// a logged-in customer: `v1.<expiry ms>.<mac>` where mac is base64url (no padding) of
//   HMAC-SHA256(secret, "v1\n" + tenant + "\n" + user_id + "\n" + expiry ms)
// (docs/SECURITY.md has the recipe in Node.js and Python). A token names neither the
// tenant nor the user: the verifier supplies both, so a token only works for the pair it
// was minted for. Replay within the lifetime is possible by design (they are bearer
// tokens), hence the short default lifetime and the cap on how far ahead expiry may be.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace streamrec::auth {

inline constexpr int64_t kDefaultUserTokenTtlMs = 15 * 60 * 1000;
inline constexpr int64_t kDefaultUserTokenMaxTtlMs = 24 * 3600 * 1000;
//! Shortest accepted token secret (bytes).
inline constexpr size_t kMinUserTokenSecretLength = 32;
//! The one message of every rejected token, whatever part failed.
inline constexpr std::string_view kInvalidUserToken = "missing or invalid user token";

//! The current secret and, while shops switch over, the previous one (may be empty).
struct UserTokenSecrets {
  std::string current;
  std::string previous;
};

//! The token for (tenant, user_id) valid until `expires_ms` (Unix ms), signed with
//! `secret`. Returns "" when tenant or user_id is empty or holds '\n' or '\0', the
//! separators of the signed message (such ids are never accepted by VerifyUserToken).
std::string IssueUserToken(std::string_view secret, std::string_view tenant,
                           std::string_view user_id, int64_t expires_ms);

//! Ok when `token` was minted by IssueUserToken with either secret for exactly this tenant
//! and user, `now_ms` < expiry and expiry <= now_ms + max_ttl_ms (catches expiries in
//! seconds-vs-microseconds mix-ups and overly long-lived tokens). Otherwise
//! kUnauthenticated with kInvalidUserToken. MACs are compared in constant time.
common::Status VerifyUserToken(const UserTokenSecrets& secrets, std::string_view token,
                               std::string_view tenant, std::string_view user_id, int64_t now_ms,
                               int64_t max_ttl_ms = kDefaultUserTokenMaxTtlMs);

}  // namespace streamrec::auth
