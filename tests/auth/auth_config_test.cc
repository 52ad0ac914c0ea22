#include "auth/auth_config.h"

#include <gtest/gtest.h>

#include <map>

#include "store/store.h"
#include "support/temp_dir.h"

namespace streamrec::auth {
namespace {

using common::Code;

const std::string kSecret = "current-secret-0123456789abcdef-0123456789";
constexpr int64_t kNow = 1'700'000'000'000;

GetEnv FakeEnv(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(AuthConfigTest, ExtractApiKeyFromEitherHeader) {
  EXPECT_EQ(ExtractApiKey("Bearer sr_abc_def"), "sr_abc_def");
  EXPECT_EQ(ExtractApiKey("bearer   sr_abc_def  "), "sr_abc_def");
  EXPECT_EQ(ExtractApiKey("BEARER\tsr_abc_def"), "sr_abc_def");
  EXPECT_EQ(ExtractApiKey(" sr_abc_def "), "sr_abc_def");  // X-Api-Key
  EXPECT_EQ(ExtractApiKey("Bearer "), "");
  EXPECT_EQ(ExtractApiKey(""), "");
  EXPECT_EQ(ExtractApiKey("Bearersr_abc"), "Bearersr_abc");
}

TEST(AuthConfigTest, CheckAdminWithStoredAndBootstrapKeys) {
  testing::TempDir dir;
  auto store = store::Store::Open(dir.Sub("db"), {8 << 20, 1 << 20, 8 << 20});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto keys = KeyStore::Open(**store);
  ASSERT_TRUE(keys.ok());
  KeyStore& ks = **keys;
  auto key = ks.Create("shop1", {"catalog:write"}, "feed importer");
  ASSERT_TRUE(key.ok());

  EXPECT_TRUE(CheckAdmin(ks, "Bearer " + *key, "shop1", "catalog:write").ok());
  EXPECT_TRUE(CheckAdmin(ks, *key, "shop1", "catalog:write").ok());
  EXPECT_EQ(CheckAdmin(ks, "", "shop1", "catalog:write").code, Code::kUnauthenticated);
  EXPECT_EQ(CheckAdmin(ks, "Bearer", "shop1", "catalog:write").code, Code::kUnauthenticated);
  EXPECT_EQ(CheckAdmin(ks, "Basic dXNlcjpwYXNz", "shop1", "catalog:write").code,
            Code::kUnauthenticated);
  EXPECT_EQ(CheckAdmin(ks, "Bearer " + *key, "shop2", "catalog:write").code, Code::kForbidden);
  EXPECT_EQ(CheckAdmin(ks, "Bearer " + *key, "shop1", "gdpr:delete").code, Code::kForbidden);

  AuthConfig config;
  const std::string bootstrap = "0123456789abcdef0123456789abcdef-boot";
  EXPECT_TRUE(LoadBootstrapKey(ks, config, FakeEnv({})).ok());
  EXPECT_EQ(CheckAdmin(ks, "Bearer " + bootstrap, "shop1", "admin").code, Code::kUnauthenticated);
  auto weak = LoadBootstrapKey(ks, config, FakeEnv({{"STREAMREC_ADMIN_KEY", "tooshort"}}));
  EXPECT_EQ(weak.code, Code::kInvalidArgument);
  EXPECT_EQ(weak.ToString().find("tooshort"), std::string::npos);
  ASSERT_TRUE(LoadBootstrapKey(ks, config, FakeEnv({{"STREAMREC_ADMIN_KEY", bootstrap}})).ok());
  EXPECT_TRUE(CheckAdmin(ks, "Bearer " + bootstrap, "shop1", "gdpr:delete").ok());
}

TEST(AuthConfigTest, LoadUserTokenSecrets) {
  AuthConfig config;
  auto none = LoadUserTokenSecrets(config, FakeEnv({}));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->current.empty());

  auto both = LoadUserTokenSecrets(
      config, FakeEnv({{"STREAMREC_USER_TOKEN_SECRET", kSecret},
                       {"STREAMREC_USER_TOKEN_SECRET_PREVIOUS", kSecret + "-old"}}));
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->current, kSecret);
  EXPECT_EQ(both->previous, kSecret + "-old");

  auto weak = LoadUserTokenSecrets(config, FakeEnv({{"STREAMREC_USER_TOKEN_SECRET", "short1"}}));
  ASSERT_FALSE(weak.ok());
  EXPECT_EQ(weak.status().field, "STREAMREC_USER_TOKEN_SECRET");
  EXPECT_EQ(weak.status().ToString().find("short1"), std::string::npos);

  EXPECT_FALSE(
      LoadUserTokenSecrets(config, FakeEnv({{"STREAMREC_USER_TOKEN_SECRET_PREVIOUS", kSecret}}))
          .ok());

  config.require_user_token_for_logged_in = true;
  EXPECT_FALSE(LoadUserTokenSecrets(config, FakeEnv({})).ok());
  config.user_token_secret_env = "SHOP_TOKEN_KEY";
  auto renamed = LoadUserTokenSecrets(config, FakeEnv({{"SHOP_TOKEN_KEY", kSecret}}));
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->current, kSecret);
}

TEST(AuthConfigTest, CheckUserReadPolicies) {
  AuthConfig config;  // anonymous allowed, tokens not required
  UserTokenSecrets secrets{kSecret, ""};
  std::string token = IssueUserToken(kSecret, "shop1", "c42", kNow + kDefaultUserTokenTtlMs);
  std::string bad = IssueUserToken(kSecret, "shop1", "c43", kNow + kDefaultUserTokenTtlMs);

  EXPECT_TRUE(CheckUserRead(config, secrets, "shop1", "duid-1", "", false, kNow).ok());
  EXPECT_TRUE(CheckUserRead(config, secrets, "shop1", "c42", "", true, kNow).ok());
  EXPECT_TRUE(CheckUserRead(config, secrets, "shop1", "c42", token, true, kNow).ok());
  // A presented token is checked even where none is required.
  EXPECT_EQ(CheckUserRead(config, secrets, "shop1", "c42", bad, true, kNow).code,
            Code::kUnauthenticated);
  // ...unless there is no secret to check it with.
  EXPECT_TRUE(CheckUserRead(config, {}, "shop1", "c42", bad, true, kNow).ok());

  config.require_user_token_for_logged_in = true;
  EXPECT_EQ(CheckUserRead(config, secrets, "shop1", "c42", "", true, kNow).code,
            Code::kUnauthenticated);
  EXPECT_TRUE(CheckUserRead(config, secrets, "shop1", "c42", token, true, kNow).ok());
  EXPECT_EQ(CheckUserRead(config, secrets, "shop2", "c42", token, true, kNow).code,
            Code::kUnauthenticated);
  EXPECT_EQ(
      CheckUserRead(config, secrets, "shop1", "c42", token, true, kNow + kDefaultUserTokenTtlMs)
          .code,
      Code::kUnauthenticated);
  EXPECT_EQ(CheckUserRead(config, {}, "shop1", "c42", token, true, kNow).code,
            Code::kUnauthenticated);
  EXPECT_TRUE(CheckUserRead(config, secrets, "shop1", "duid-1", "", false, kNow).ok());

  config.allow_anonymous_duids = false;
  EXPECT_EQ(CheckUserRead(config, secrets, "shop1", "duid-1", "", false, kNow).code,
            Code::kUnauthenticated);
  std::string duid_token = IssueUserToken(kSecret, "shop1", "duid-1", kNow + 60000);
  EXPECT_TRUE(CheckUserRead(config, secrets, "shop1", "duid-1", duid_token, false, kNow).ok());

  config.user_token_max_ttl_ms = 60 * 1000;  // the 15 min token is now too long-lived
  EXPECT_EQ(CheckUserRead(config, secrets, "shop1", "c42", token, true, kNow).code,
            Code::kUnauthenticated);
  auto s = CheckUserRead(config, secrets, "shop1", "c43", bad + "x", true, kNow);
  EXPECT_EQ(s.message, kInvalidUserToken);
  EXPECT_EQ(s.ToString().find(bad), std::string::npos);
}

}  // namespace
}  // namespace streamrec::auth
