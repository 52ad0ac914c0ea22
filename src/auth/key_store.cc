#include "auth/key_store.h"

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/byte_codec.h"
#include "common/clock.h"
#include "store/store.h"

namespace streamrec::auth {

using common::Code;
using common::Status;
using store::Cf;

namespace {

constexpr std::string_view kKeyPrefix = "sr_";
constexpr size_t kKeyIdBytes = 8;  // 16 hex digits: unique enough for a list of keys
constexpr size_t kSecretBytes = 32;
constexpr size_t kMaxPresentedKey = 512;
constexpr size_t kMaxScopes = 32;
constexpr size_t kMaxScopeLength = 64;
constexpr size_t kMaxTenantLength = 128;
constexpr size_t kMaxNameLength = 200;
constexpr uint8_t kRecordVersion = 1;

Status Unauthenticated() {
  return Status::Make(Code::kUnauthenticated, "unauthenticated", std::string(kInvalidCredentials));
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out.push_back(kDigits[static_cast<uint8_t>(c) >> 4]);
    out.push_back(kDigits[static_cast<uint8_t>(c) & 15]);
  }
  return out;
}

bool IsKeyId(std::string_view s) {
  if (s.size() != kKeyIdBytes * 2) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsPrintable(std::string_view s, bool allow_space) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u > 0x20 && u < 0x7f) || (allow_space && u == ' ') || u >= 0x80;
  });
}

bool IsScope(std::string_view s) {
  if (s.empty() || s.size() > kMaxScopeLength) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '_' || c == '-' ||
           c == '.' || c == '*';
  });
}

bool Grants(const std::vector<std::string>& scopes, std::string_view wanted) {
  for (const auto& s : scopes) {
    if (s == "admin" || s == wanted) return true;
    if (s.size() >= 2 && s.ends_with(":*") &&
        wanted.starts_with(std::string_view(s).substr(0, s.size() - 1))) {
      return true;
    }
  }
  return false;
}

std::string_view DigestView(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

bool ReadDigest(common::ByteReader& r, Digest& out) {
  std::string s = r.String(out.size());
  if (s.size() != out.size()) return false;
  std::copy(s.begin(), s.end(), out.begin());
  return true;
}

}  // namespace

// Record layout (version 1): key_id, tenant, scopes, name, created_ms, revoked,
// revoked_ms, rotated_ms, hash, has_previous [, previous_hash], previous_valid_until_ms.
static std::string EncodeRecord(const KeyInfo& info, const Digest& hash,
                                const std::optional<Digest>& previous) {
  std::string out;
  out.push_back(static_cast<char>(kRecordVersion));
  common::PutString(out, info.key_id);
  common::PutString(out, info.tenant);
  common::PutVarint(out, info.scopes.size());
  for (const auto& s : info.scopes) common::PutString(out, s);
  common::PutString(out, info.name);
  common::PutSigned(out, info.created_ms);
  out.push_back(info.revoked ? 1 : 0);
  common::PutSigned(out, info.revoked_ms);
  common::PutSigned(out, info.rotated_ms);
  common::PutString(out, DigestView(hash));
  out.push_back(previous ? 1 : 0);
  if (previous) common::PutString(out, DigestView(*previous));
  common::PutSigned(out, info.previous_valid_until_ms);
  return out;
}

KeyStore::KeyStore(store::Store& store, KeyStoreOptions options, common::Registry* metrics)
    : store_(store), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = common::NowMs;
  if (metrics) {
    const std::string name = "streamrec_auth_api_key_checks_total";
    const std::string help = "Admin API key checks by result";
    counters_.ok = &metrics->GetCounter(name, help, {{"result", "ok"}});
    counters_.unauthenticated = &metrics->GetCounter(name, help, {{"result", "unauthenticated"}});
    counters_.forbidden = &metrics->GetCounter(name, help, {{"result", "forbidden"}});
  }
}

common::Result<std::unique_ptr<KeyStore>> KeyStore::Open(store::Store& store,
                                                         KeyStoreOptions options,
                                                         common::Registry* metrics) {
  std::unique_ptr<KeyStore> ks(new KeyStore(store, std::move(options), metrics));
  std::unique_ptr<rocksdb::Iterator> it(store.db(Cf::kAuth)->NewIterator({}, store.cf(Cf::kAuth)));
  const std::string prefix = store::ApiKeyKey("");
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    common::ByteReader r(std::string_view(it->value().data(), it->value().size()));
    Record rec;
    bool ok = r.Byte() == kRecordVersion;
    rec.info.key_id = r.String(kKeyIdBytes * 2);
    rec.info.tenant = r.String(kMaxTenantLength);
    size_t n = r.Count();
    for (size_t i = 0; i < n && r.ok(); ++i) rec.info.scopes.push_back(r.String(kMaxScopeLength));
    rec.info.name = r.String(kMaxNameLength);
    rec.info.created_ms = r.Signed();
    rec.info.revoked = r.Byte() != 0;
    rec.info.revoked_ms = r.Signed();
    rec.info.rotated_ms = r.Signed();
    ok = ReadDigest(r, rec.hash) && ok;
    if (r.Byte() != 0) {
      Digest prev{};
      ok = ReadDigest(r, prev) && ok;
      rec.previous_hash = prev;
    }
    rec.info.previous_valid_until_ms = r.Signed();
    if (!ok || !r.ok() || !r.done() || store::ApiKeyKey(rec.info.key_id) != key) {
      // The key id is public; the record body (hashes) is never put in a message.
      return Status::Internal("corrupt API key record for key id '" +
                              std::string(key.substr(prefix.size())) + "'");
    }
    ks->keys_.emplace(rec.info.key_id, std::move(rec));
  }
  if (!it->status().ok()) return store::FromRocks(it->status(), "reading API keys");
  return ks;
}

int64_t KeyStore::Now() const { return options_.now_ms(); }

Status KeyStore::Persist(const Record& rec) {
  rocksdb::WriteOptions wo;
  wo.sync = true;  // key changes are rare and must survive a crash once acknowledged
  return store::FromRocks(
      store_.db(Cf::kAuth)->Put(wo, store_.cf(Cf::kAuth), store::ApiKeyKey(rec.info.key_id),
                                EncodeRecord(rec.info, rec.hash, rec.previous_hash)),
      "writing API key");
}

Status KeyStore::Count(Status status) const {
  common::Counter* c = status.ok()                             ? counters_.ok
                       : status.code == Code::kUnauthenticated ? counters_.unauthenticated
                                                               : counters_.forbidden;
  if (c) c->Inc();
  return status;
}

common::Result<std::string> KeyStore::Create(std::string_view tenant,
                                             std::vector<std::string> scopes,
                                             std::string_view name) {
  if (tenant.empty() || tenant.size() > kMaxTenantLength || !IsPrintable(tenant, false)) {
    return Status::Invalid("invalid_tenant", "tenant must be \"*\" or 1 to 128 visible characters",
                           "tenant");
  }
  if (scopes.empty() || scopes.size() > kMaxScopes) {
    return Status::Invalid("invalid_scopes", "a key needs 1 to 32 scopes", "scopes");
  }
  for (const auto& s : scopes) {
    if (!IsScope(s)) {
      return Status::Invalid("invalid_scopes", "scopes are 1 to 64 characters of a-z 0-9 : _ - . *",
                             "scopes");
    }
  }
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  if (name.size() > kMaxNameLength || !IsPrintable(name, true)) {
    return Status::Invalid("invalid_name", "name must be at most 200 printable characters", "name");
  }

  std::lock_guard write(write_mu_);
  if (size() >= options_.max_keys) {
    return Status::Make(Code::kTooLarge, "too_many_keys",
                        "at most " + std::to_string(options_.max_keys) + " API keys", "keys");
  }
  std::string key_id;
  for (int attempt = 0; attempt < 4 && (key_id.empty() || keys_.count(key_id)); ++attempt) {
    auto id_bytes = RandomBytes(kKeyIdBytes);
    if (!id_bytes) return id_bytes.status();
    key_id = Hex(*id_bytes);
  }
  if (keys_.count(key_id)) return Status::Internal("could not pick a free key id");
  auto secret_bytes = RandomBytes(kSecretBytes);
  if (!secret_bytes) return secret_bytes.status();
  std::string secret = Base64UrlEncode(*secret_bytes);

  Record rec;
  rec.info.key_id = key_id;
  rec.info.tenant = std::string(tenant);
  rec.info.scopes = std::move(scopes);
  rec.info.name = std::string(name);
  rec.info.created_ms = Now();
  rec.hash = Sha256(secret);
  if (auto s = Persist(rec); !s.ok()) return s;
  spdlog::info("auth: created API key {} (tenant {}, scopes {}, name '{}')", key_id,
               rec.info.tenant, fmt::join(rec.info.scopes, ","), rec.info.name);
  {
    std::unique_lock lock(mu_);
    keys_.emplace(key_id, std::move(rec));
  }
  return std::string(kKeyPrefix) + key_id + "_" + secret;
}

Status KeyStore::Verify(std::string_view presented, std::string_view tenant,
                        std::string_view scope) const {
  if (presented.empty() || presented.size() > kMaxPresentedKey) return Count(Unauthenticated());

  // Parse sr_<key id>_<secret>; anything else can only be the bootstrap key.
  std::string_view key_id, secret;
  bool parsed = false;
  if (presented.starts_with(kKeyPrefix)) {
    std::string_view rest = presented.substr(kKeyPrefix.size());
    size_t sep = rest.find('_');
    if (sep != std::string_view::npos) {
      key_id = rest.substr(0, sep);
      secret = rest.substr(sep + 1);
      parsed =
          IsKeyId(key_id) && secret.size() == Base64UrlLength(kSecretBytes) && IsBase64Url(secret);
    }
  }
  // Hashing before the lookup keeps unknown and known key ids equally slow.
  Digest digest = parsed ? Sha256(secret) : Digest{};

  std::shared_lock lock(mu_);
  const Record* match = nullptr;
  if (parsed) {
    if (auto it = keys_.find(key_id); it != keys_.end() && !it->second.info.revoked) {
      const Record& rec = it->second;
      bool current = ConstantTimeEquals(digest, rec.hash);
      bool previous = rec.previous_hash && Now() < rec.info.previous_valid_until_ms &&
                      ConstantTimeEquals(digest, *rec.previous_hash);
      if (current || previous) match = &rec;
    }
  }
  if (!match && bootstrap_ && ConstantTimeEquals(Sha256(presented), bootstrap_->hash)) {
    match = &*bootstrap_;
  }
  if (!match) return Count(Unauthenticated());

  if (match->info.tenant != "*" && (tenant.empty() || match->info.tenant != tenant)) {
    return Count(Status::Make(Code::kForbidden, "tenant_not_allowed",
                              "this API key is not valid for this tenant", "tenant"));
  }
  if (!Grants(match->info.scopes, scope)) {
    return Count(Status::Make(Code::kForbidden, "scope_not_allowed",
                              "this API key lacks the scope '" + std::string(scope) + "'",
                              "scope"));
  }
  return Count(Status::Ok());
}

common::Result<KeyStore::Record> KeyStore::RecordToChange(std::string_view key_id,
                                                          std::string_view bootstrap_why) const {
  if (key_id == kBootstrapKeyId) {
    return Status::Invalid("bootstrap_key", std::string(bootstrap_why), "key_id");
  }
  std::shared_lock lock(mu_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) {
    return Status::Make(Code::kNotFound, "no_such_key", "no such API key", "key_id");
  }
  return it->second;
}

common::Result<std::string> KeyStore::Rotate(std::string_view key_id) {
  std::lock_guard write(write_mu_);
  auto found =
      RecordToChange(key_id, "the bootstrap key changes with STREAMREC_ADMIN_KEY and a restart");
  if (!found.ok()) return found.status();
  Record rec = std::move(found).value();
  if (rec.info.revoked) {
    return Status::Invalid("key_revoked", "a revoked API key cannot be rotated", "key_id");
  }
  auto secret_bytes = RandomBytes(kSecretBytes);
  if (!secret_bytes) return secret_bytes.status();
  std::string secret = Base64UrlEncode(*secret_bytes);
  int64_t now = Now();
  // Only the secret just replaced keeps a grace period; one still in grace from an
  // earlier rotation is dropped.
  rec.previous_hash = rec.hash;
  rec.info.previous_valid_until_ms = now + options_.rotation_grace_ms;
  rec.info.rotated_ms = now;
  rec.hash = Sha256(secret);
  if (auto s = Persist(rec); !s.ok()) return s;
  spdlog::info("auth: rotated API key {} (previous secret valid for {} s)", rec.info.key_id,
               options_.rotation_grace_ms / 1000);
  {
    std::unique_lock lock(mu_);
    keys_[rec.info.key_id] = rec;
  }
  return std::string(kKeyPrefix) + rec.info.key_id + "_" + secret;
}

Status KeyStore::Revoke(std::string_view key_id) {
  std::lock_guard write(write_mu_);
  auto found = RecordToChange(key_id,
                              "the bootstrap key goes away when STREAMREC_ADMIN_KEY is unset and "
                              "streamrec restarts");
  if (!found.ok()) return found.status();
  Record rec = std::move(found).value();
  if (rec.info.revoked) return Status::Ok();
  rec.info.revoked = true;
  rec.info.revoked_ms = Now();
  rec.previous_hash.reset();
  rec.info.previous_valid_until_ms = 0;
  if (auto s = Persist(rec); !s.ok()) return s;
  spdlog::info("auth: revoked API key {}", rec.info.key_id);
  std::unique_lock lock(mu_);
  keys_[rec.info.key_id] = std::move(rec);
  return Status::Ok();
}

std::vector<KeyInfo> KeyStore::List(std::string_view tenant) const {
  std::vector<KeyInfo> out;
  std::shared_lock lock(mu_);
  if (bootstrap_ && (tenant.empty() || tenant == bootstrap_->info.tenant)) {
    out.push_back(bootstrap_->info);
  }
  for (const auto& [id, rec] : keys_) {
    if (tenant.empty() || rec.info.tenant == tenant) out.push_back(rec.info);
  }
  std::sort(out.begin(), out.end(), [](const KeyInfo& a, const KeyInfo& b) {
    return std::tie(a.created_ms, a.key_id) < std::tie(b.created_ms, b.key_id);
  });
  return out;
}

Status KeyStore::AddBootstrapKey(std::string_view plaintext) {
  // The message names the variable, never its value.
  if (plaintext.size() < kMinBootstrapKeyLength || plaintext.size() > kMaxPresentedKey ||
      !IsPrintable(plaintext, false)) {
    return Status::Invalid("invalid_bootstrap_key",
                           "the bootstrap admin key must be 32 to 512 visible characters, "
                           "e.g. from `openssl rand -base64 32`",
                           "STREAMREC_ADMIN_KEY");
  }
  Record rec;
  rec.info.key_id = std::string(kBootstrapKeyId);
  rec.info.tenant = "*";
  rec.info.scopes = {"admin"};
  rec.info.name = "STREAMREC_ADMIN_KEY";
  rec.info.created_ms = Now();
  rec.info.bootstrap = true;
  rec.hash = Sha256(plaintext);
  std::unique_lock lock(mu_);
  bootstrap_ = std::move(rec);
  return Status::Ok();
}

size_t KeyStore::size() const {
  std::shared_lock lock(mu_);
  return keys_.size();
}

}  // namespace streamrec::auth
