// API keys for the admin endpoints (catalog, rules, scenarios, models, GDPR).
//
// A key reads `sr_<key id>_<secret>`: the key id (16 hex digits) is public and names the
// key in lists and logs; the secret is 32 random bytes in base64url and is shown once, by
// Create or Rotate. Only SHA-256(secret) is stored, in Cf::kAuth of the `log` database.
// All records are loaded at Open and kept in memory, so Verify is one SHA-256, one hash
// map lookup under a shared lock and a constant-time compare; it never reads RocksDB.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/crypto.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/string_hash.h"

namespace streamrec::store {
class Store;
}

namespace streamrec::auth {

inline constexpr int64_t kHourMs = 3600ll * 1000;

//! The one message of every kUnauthenticated answer, whatever part failed.
inline constexpr std::string_view kInvalidCredentials = "missing or invalid credentials";

//! What List shows of a key: never the secret nor its hash.
struct KeyInfo {
  std::string key_id;
  std::string tenant;  //!< "*" for all tenants
  std::vector<std::string> scopes;
  std::string name;
  int64_t created_ms = 0;
  bool revoked = false;
  int64_t revoked_ms = 0;
  int64_t rotated_ms = 0;               //!< last Rotate, 0 when never
  int64_t previous_valid_until_ms = 0;  //!< the secret before the last Rotate works until then
  bool bootstrap = false;               //!< from STREAMREC_ADMIN_KEY, memory only
};

struct KeyStoreOptions {
  int64_t rotation_grace_ms = 24 * kHourMs;  //!< old secret still accepted after Rotate
  size_t max_keys = 10000;                   //!< stored keys, revoked ones included
  std::function<int64_t()> now_ms;           //!< wall clock; common::NowMs when empty
};

class KeyStore {
 public:
  static constexpr std::string_view kBootstrapKeyId = "bootstrap";
  //! Shortest accepted STREAMREC_ADMIN_KEY.
  static constexpr size_t kMinBootstrapKeyLength = 32;

  //! Loads every stored key. REQUIRES: `store` outlives the KeyStore. `metrics` may be null.
  static common::Result<std::unique_ptr<KeyStore>> Open(store::Store& store,
                                                        KeyStoreOptions options = {},
                                                        common::Registry* metrics = nullptr);

  //! Creates a key for `tenant` ("*" = every tenant) holding `scopes` (e.g. "admin",
  //! "catalog:write", "catalog:*") and returns the plaintext key; it cannot be read again.
  common::Result<std::string> Create(std::string_view tenant, std::vector<std::string> scopes,
                                     std::string_view name);

  //! Ok when `presented_key` is a live key valid for `tenant` and `scope`. An empty tenant
  //! means a cross-tenant operation, which only "*" keys may do. kUnauthenticated (with
  //! kInvalidCredentials whatever failed) for a missing, malformed, unknown, revoked or
  //! expired key; kForbidden for a valid key lacking the tenant or scope.
  //! Scope rules: "admin" grants every scope, "x:*" grants "x:<anything>", else exact.
  common::Status Verify(std::string_view presented_key, std::string_view tenant,
                        std::string_view scope) const;

  //! Gives the key a new secret (returned as the new plaintext key); the previous secret
  //! stays valid for options.rotation_grace_ms, so clients can be updated without downtime.
  common::Result<std::string> Rotate(std::string_view key_id);
  //! Revokes a key for good (idempotent); it stays listed as revoked.
  common::Status Revoke(std::string_view key_id);
  //! Keys of `tenant` (exact match, "*" lists all-tenant keys), or every key when empty.
  std::vector<KeyInfo> List(std::string_view tenant = {}) const;

  //! Accepts `plaintext` (from STREAMREC_ADMIN_KEY; any format, at least
  //! kMinBootstrapKeyLength printable characters) as an all-tenant "admin" key with id
  //! kBootstrapKeyId. Only its hash is kept, in memory: it lives as long as the variable
  //! is set. Calling again replaces it.
  common::Status AddBootstrapKey(std::string_view plaintext);

  size_t size() const;

 private:
  struct Record {
    KeyInfo info;
    Digest hash{};
    std::optional<Digest> previous_hash;
  };
  struct Counters {
    common::Counter* ok = nullptr;
    common::Counter* unauthenticated = nullptr;
    common::Counter* forbidden = nullptr;
  };

  KeyStore(store::Store& store, KeyStoreOptions options, common::Registry* metrics);
  int64_t Now() const;
  common::Status Persist(const Record& record);
  //! A copy of `key_id`'s record to change and persist; not for the bootstrap key (refused with
  //! `bootstrap_why`) nor unknown ids. REQUIRES: write_mu_ held.
  common::Result<Record> RecordToChange(std::string_view key_id,
                                        std::string_view bootstrap_why) const;
  common::Status Count(common::Status status) const;

  store::Store& store_;
  KeyStoreOptions options_;
  Counters counters_;
  std::mutex write_mu_;           // serializes Create/Rotate/Revoke (read, persist, publish)
  mutable std::shared_mutex mu_;  // guards keys_ and bootstrap_
  // Looked up by string_view without a copy.
  std::unordered_map<std::string, Record, common::StringHash, std::equal_to<>> keys_;
  std::optional<Record> bootstrap_;
};

}  // namespace streamrec::auth
