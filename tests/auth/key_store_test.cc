#include "auth/key_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>

#include "store/store.h"
#include "support/temp_dir.h"

namespace streamrec::auth {
namespace {

using common::Code;

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    keys_.reset();
    store_.reset();
    auto s = store::Store::Open(dir_.Sub("db"), small_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    KeyStoreOptions o;
    o.rotation_grace_ms = 60 * 1000;
    o.max_keys = 8;
    o.now_ms = [this] { return now_.load(); };
    auto k = KeyStore::Open(*store_, o, &metrics_);
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    keys_ = std::move(*k);
  }

  std::string MustCreate(std::string tenant, std::vector<std::string> scopes) {
    auto key = keys_->Create(tenant, std::move(scopes), "test key");
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return key.ok() ? *key : std::string();
  }

  static std::string IdOf(const std::string& key) { return key.substr(3, 16); }

  testing::TempDir dir_;
  store::StoreOptions small_{8 << 20, 1 << 20, 8 << 20};
  common::Registry metrics_;
  std::atomic<int64_t> now_{1'700'000'000'000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<KeyStore> keys_;
};

TEST_F(KeyStoreTest, CreatedKeyHasDocumentedFormatAndVerifies) {
  std::string key = MustCreate("shop1", {"catalog:write"});
  ASSERT_EQ(key.size(), 3u + 16 + 1 + 43);
  EXPECT_EQ(key.substr(0, 3), "sr_");
  EXPECT_EQ(key[19], '_');
  EXPECT_TRUE(keys_->Verify(key, "shop1", "catalog:write").ok());
  EXPECT_EQ(metrics_.CounterValue("streamrec_auth_api_key_checks_total", {{"result", "ok"}}), 1u);
  EXPECT_NE(MustCreate("shop1", {"admin"}), key);
}

TEST_F(KeyStoreTest, MissingMalformedUnknownAndRevokedAreUnauthenticatedAlike) {
  std::string key = MustCreate("shop1", {"admin"});
  std::string other = MustCreate("shop1", {"admin"});
  std::string unknown_secret = key.substr(0, 20) + std::string(43, 'A');
  std::string unknown_id = "sr_0123456789abcdef_" + key.substr(20);
  ASSERT_TRUE(keys_->Revoke(IdOf(other)).ok());
  std::vector<std::string> bad = {"",
                                  "sr_",
                                  "garbage",
                                  key.substr(0, key.size() - 1),
                                  key + "x",
                                  "SR" + key.substr(2),
                                  unknown_secret,
                                  unknown_id,
                                  other,
                                  std::string(10000, 'a')};
  for (const auto& k : bad) {
    auto s = keys_->Verify(k, "shop1", "admin");
    EXPECT_EQ(s.code, Code::kUnauthenticated) << k;
    EXPECT_EQ(s.message, kInvalidCredentials);
    EXPECT_EQ(s.reason, "unauthenticated");
  }
  EXPECT_EQ(
      metrics_.CounterValue("streamrec_auth_api_key_checks_total", {{"result", "unauthenticated"}}),
      bad.size());
}

TEST_F(KeyStoreTest, WrongTenantOrScopeIsForbidden) {
  std::string key = MustCreate("shop1", {"catalog:write", "rules:*"});
  EXPECT_EQ(keys_->Verify(key, "shop2", "catalog:write").code, Code::kForbidden);
  EXPECT_EQ(keys_->Verify(key, "", "catalog:write").code, Code::kForbidden);
  EXPECT_EQ(keys_->Verify(key, "shop1", "models:write").code, Code::kForbidden);
  EXPECT_EQ(keys_->Verify(key, "shop1", "admin").code, Code::kForbidden);
  EXPECT_EQ(keys_->Verify(key, "shop1", "catalog:read").code, Code::kForbidden);
  EXPECT_TRUE(keys_->Verify(key, "shop1", "rules:write").ok());
  EXPECT_TRUE(keys_->Verify(key, "shop1", "rules:read").ok());

  std::string global = MustCreate("*", {"admin"});
  EXPECT_TRUE(keys_->Verify(global, "shop2", "gdpr:delete").ok());
  EXPECT_TRUE(keys_->Verify(global, "", "models:write").ok());
  EXPECT_EQ(metrics_.CounterValue("streamrec_auth_api_key_checks_total", {{"result", "forbidden"}}),
            5u);
}

TEST_F(KeyStoreTest, RotationKeepsOldSecretForGracePeriod) {
  std::string old_key = MustCreate("shop1", {"admin"});
  auto rotated = keys_->Rotate(IdOf(old_key));
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  std::string new_key = *rotated;
  EXPECT_EQ(IdOf(new_key), IdOf(old_key));
  EXPECT_NE(new_key, old_key);
  EXPECT_TRUE(keys_->Verify(new_key, "shop1", "admin").ok());
  EXPECT_TRUE(keys_->Verify(old_key, "shop1", "admin").ok());
  now_ += 59 * 1000;
  EXPECT_TRUE(keys_->Verify(old_key, "shop1", "admin").ok());
  now_ += 1000;
  EXPECT_EQ(keys_->Verify(old_key, "shop1", "admin").code, Code::kUnauthenticated);
  EXPECT_TRUE(keys_->Verify(new_key, "shop1", "admin").ok());

  // A second rotation ends the first one's grace at once: one previous secret only.
  auto third = keys_->Rotate(IdOf(old_key));
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(keys_->Verify(new_key, "shop1", "admin").ok());
  EXPECT_TRUE(keys_->Verify(*third, "shop1", "admin").ok());
  EXPECT_EQ(keys_->Verify(old_key, "shop1", "admin").code, Code::kUnauthenticated);

  auto listed = keys_->List("shop1");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].rotated_ms, now_.load());
  EXPECT_EQ(listed[0].previous_valid_until_ms, now_.load() + 60 * 1000);
}

TEST_F(KeyStoreTest, RevokeEndsEverySecretAndUnknownIdsAreNotFound) {
  std::string key = MustCreate("shop1", {"admin"});
  auto rotated = keys_->Rotate(IdOf(key));
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(keys_->Revoke(IdOf(key)).ok());
  EXPECT_TRUE(keys_->Revoke(IdOf(key)).ok());  // idempotent
  EXPECT_EQ(keys_->Verify(key, "shop1", "admin").code, Code::kUnauthenticated);
  EXPECT_EQ(keys_->Verify(*rotated, "shop1", "admin").code, Code::kUnauthenticated);
  EXPECT_EQ(keys_->Rotate(IdOf(key)).status().code, Code::kInvalidArgument);
  EXPECT_EQ(keys_->Revoke("0000000000000000").code, Code::kNotFound);
  EXPECT_EQ(keys_->Rotate("0000000000000000").status().code, Code::kNotFound);
  auto listed = keys_->List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0].revoked);
  EXPECT_EQ(listed[0].revoked_ms, now_.load());
}

TEST_F(KeyStoreTest, PersistsAcrossReopen) {
  std::string a = MustCreate("shop1", {"catalog:write"});
  std::string b = MustCreate("*", {"admin"});
  std::string c = MustCreate("shop2", {"rules:write"});
  auto rotated = keys_->Rotate(IdOf(b));
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(keys_->Revoke(IdOf(c)).ok());

  Open();
  EXPECT_EQ(keys_->size(), 3u);
  EXPECT_TRUE(keys_->Verify(a, "shop1", "catalog:write").ok());
  EXPECT_TRUE(keys_->Verify(*rotated, "shop9", "admin").ok());
  EXPECT_TRUE(keys_->Verify(b, "shop9", "admin").ok());  // still in its grace period
  EXPECT_EQ(keys_->Verify(c, "shop2", "rules:write").code, Code::kUnauthenticated);
  now_ += 61 * 1000;
  EXPECT_EQ(keys_->Verify(b, "shop9", "admin").code, Code::kUnauthenticated);

  auto shop1 = keys_->List("shop1");
  ASSERT_EQ(shop1.size(), 1u);
  EXPECT_EQ(shop1[0].key_id, IdOf(a));
  EXPECT_EQ(shop1[0].tenant, "shop1");
  EXPECT_EQ(shop1[0].scopes, std::vector<std::string>{"catalog:write"});
  EXPECT_EQ(shop1[0].name, "test key");
  EXPECT_FALSE(shop1[0].revoked);
  EXPECT_EQ(keys_->List("*").size(), 1u);
  EXPECT_EQ(keys_->List().size(), 3u);
}

TEST_F(KeyStoreTest, StoresNoSecretOnDisk) {
  std::string key = MustCreate("shop1", {"admin"});
  std::string secret = key.substr(20);
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db(store::Cf::kAuth)->NewIterator({}, store_->cf(store::Cf::kAuth)));
  int records = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++records;
    EXPECT_EQ(it->value().ToString().find(secret), std::string::npos);
  }
  EXPECT_EQ(records, 1);
}

TEST_F(KeyStoreTest, RejectsBadCreateArgumentsAndCapsKeyCount) {
  EXPECT_EQ(keys_->Create("", {"admin"}, "x").status().code, Code::kInvalidArgument);
  EXPECT_EQ(keys_->Create("shop 1", {"admin"}, "x").status().code, Code::kInvalidArgument);
  EXPECT_EQ(keys_->Create("shop1", {}, "x").status().code, Code::kInvalidArgument);
  EXPECT_EQ(keys_->Create("shop1", {"Admin"}, "x").status().code, Code::kInvalidArgument);
  EXPECT_EQ(keys_->Create("shop1", {"admin"}, "a\nb").status().code, Code::kInvalidArgument);
  for (int i = 0; i < 8; ++i) MustCreate("shop1", {"admin"});
  EXPECT_EQ(keys_->Create("shop1", {"admin"}, "x").status().code, Code::kTooLarge);
}

TEST_F(KeyStoreTest, BootstrapKeyIsAnAllTenantAdminKeyKeptInMemory) {
  const std::string plain = "a-bootstrap-key-of-at-least-32-characters";
  EXPECT_EQ(keys_->AddBootstrapKey("short").code, Code::kInvalidArgument);
  ASSERT_TRUE(keys_->AddBootstrapKey(plain).ok());
  EXPECT_TRUE(keys_->Verify(plain, "any-shop", "gdpr:delete").ok());
  EXPECT_TRUE(keys_->Verify(plain, "", "models:write").ok());
  EXPECT_EQ(keys_->Verify(plain + "x", "any-shop", "admin").code, Code::kUnauthenticated);
  auto listed = keys_->List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(listed[0].bootstrap);
  EXPECT_EQ(listed[0].key_id, KeyStore::kBootstrapKeyId);
  EXPECT_EQ(keys_->Revoke(KeyStore::kBootstrapKeyId).code, Code::kInvalidArgument);
  EXPECT_EQ(keys_->Rotate(KeyStore::kBootstrapKeyId).status().code, Code::kInvalidArgument);

  // A bootstrap key shaped like a generated key works too.
  std::string shaped = "sr_00112233aabbccdd_" + std::string(43, 'Z');
  ASSERT_TRUE(keys_->AddBootstrapKey(shaped).ok());
  EXPECT_TRUE(keys_->Verify(shaped, "shop1", "admin").ok());
  EXPECT_EQ(keys_->Verify(plain, "shop1", "admin").code, Code::kUnauthenticated);

  Open();  // memory only
  EXPECT_EQ(keys_->Verify(shaped, "shop1", "admin").code, Code::kUnauthenticated);
  EXPECT_TRUE(keys_->List().empty());
}

TEST_F(KeyStoreTest, MessagesNeverContainThePresentedKey) {
  std::string key = MustCreate("shop1", {"catalog:write"});
  std::string secret = key.substr(20);
  std::string revoked = MustCreate("shop1", {"admin"});
  ASSERT_TRUE(keys_->Revoke(IdOf(revoked)).ok());
  std::string tampered = key;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  const std::string bootstrap = "bootstrap-secret-value-0123456789-abcdef";
  ASSERT_TRUE(keys_->AddBootstrapKey(bootstrap).ok());
  ASSERT_EQ(keys_->AddBootstrapKey("short-secret").code, Code::kInvalidArgument);
  std::vector<common::Status> answers = {
      keys_->Verify(key, "shop2", "catalog:write"),      keys_->Verify(key, "shop1", "rules:write"),
      keys_->Verify(tampered, "shop1", "catalog:write"), keys_->Verify(revoked, "shop1", "admin"),
      keys_->Verify(bootstrap + "!", "s", "admin"),      keys_->AddBootstrapKey("short-secret")};
  for (const auto& s : answers) {
    ASSERT_FALSE(s.ok());
    std::string text = s.ToString() + s.reason + s.field;
    for (const std::string& secret_text :
         {key, secret, tampered, tampered.substr(20), revoked, revoked.substr(20), bootstrap,
          std::string("short-secret")}) {
      EXPECT_EQ(text.find(secret_text), std::string::npos) << text;
    }
  }
}

}  // namespace
}  // namespace streamrec::auth
