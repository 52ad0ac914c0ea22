// Access-control settings and the two request checks the HTTP layer calls: CheckAdmin for
// admin endpoints, CheckUserRead for the public recommendations endpoint. The checks are
// pure (no clock, no environment, no logging) so serve/ decides what to count and log.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "auth/key_store.h"
#include "auth/rate_limiter.h"
#include "auth/user_token.h"
#include "common/status.h"

namespace streamrec::auth {

//! NOTE: secrets never go in the config file; it only names the environment variables
//! that hold them.
struct AuthConfig {
  //! Admin endpoints demand an API key. false is for local development only: every admin
  //! endpoint is then open, and streamrec should warn about it at startup.
  bool admin_keys_enabled = true;
  //! Environment variable with the bootstrap admin key (see KeyStore::AddBootstrapKey).
  std::string admin_key_env = "STREAMREC_ADMIN_KEY";
  //! How long a rotated API key's old secret keeps working.
  int64_t key_rotation_grace_ms = 24 * kHourMs;

  //! Reads for anonymous device ids (duids) need no token.
  bool allow_anonymous_duids = true;
  //! Reads for logged-in customer ids need a valid user token.
  bool require_user_token_for_logged_in = false;
  //! Environment variables with the HMAC secrets for user tokens (current, previous).
  std::string user_token_secret_env = "STREAMREC_USER_TOKEN_SECRET";
  std::string user_token_previous_secret_env = "STREAMREC_USER_TOKEN_SECRET_PREVIOUS";
  //! Tokens whose expiry is further ahead than this are refused.
  int64_t user_token_max_ttl_ms = kDefaultUserTokenMaxTtlMs;

  //! Per-client limit on the public endpoints.
  RateLimitOptions rate_limit;
};

using GetEnv = std::function<const char*(const char*)>;

//! Reads the user token secrets named by `config`. Unset variables give empty secrets,
//! an error when tokens are required; secrets shorter than kMinUserTokenSecretLength and a
//! previous secret without a current one are errors. Messages name variables, never values.
common::Result<UserTokenSecrets> LoadUserTokenSecrets(const AuthConfig& config,
                                                      const GetEnv& getenv = ::getenv);

//! Hands config.admin_key_env's value, when set and not empty, to AddBootstrapKey.
common::Status LoadBootstrapKey(KeyStore& keys, const AuthConfig& config,
                                const GetEnv& getenv = ::getenv);

//! The key in an `Authorization: Bearer <key>` value (scheme case-insensitive) or an
//! `X-Api-Key: <key>` value; surrounding spaces are dropped. Empty when there is none.
std::string_view ExtractApiKey(std::string_view header_value);

//! Verifies the key of `authorization_header` (either header's value, see ExtractApiKey)
//! for `tenant` (empty: cross-tenant operation) and `scope`. See KeyStore::Verify.
common::Status CheckAdmin(const KeyStore& keys, std::string_view authorization_header,
                          std::string_view tenant, std::string_view scope);

//! Whether a read of recommendations for `user_id` may go ahead.
//! - an anonymous id (is_logged_in_id false) passes when config.allow_anonymous_duids;
//!   otherwise it needs a valid token like a logged-in id;
//! - a logged-in id needs a valid token when config.require_user_token_for_logged_in;
//! - a token that is presented is always verified (a bad one is rejected even where none
//!   is required, so shop integration bugs show), unless no secret is configured at all.
//! Failures are kUnauthenticated with kInvalidUserToken.
common::Status CheckUserRead(const AuthConfig& config, const UserTokenSecrets& secrets,
                             std::string_view tenant, std::string_view user_id,
                             std::string_view token, bool is_logged_in_id, int64_t now_ms);

}  // namespace streamrec::auth
