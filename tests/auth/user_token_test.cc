#include "auth/user_token.h"

#include <gtest/gtest.h>

#include "auth/crypto.h"

namespace streamrec::auth {
namespace {

using common::Code;

const std::string kSecret = "current-secret-0123456789abcdef-0123456789";
const std::string kOldSecret = "previous-secret-0123456789abcdef-012345678";
constexpr int64_t kNow = 1'700'000'000'000;

UserTokenSecrets Secrets() { return {kSecret, ""}; }

void ExpectRejected(const common::Status& s) {
  EXPECT_EQ(s.code, Code::kUnauthenticated);
  EXPECT_EQ(s.message, kInvalidUserToken);
  EXPECT_EQ(s.reason, "invalid_user_token");
}

TEST(UserTokenTest, MatchesTheDocumentedRecipe) {
  // The recipe of docs/SECURITY.md, spelled out with the crypto wrappers.
  std::string expected =
      "v1.1700000900000." +
      Base64UrlEncode(HmacSha256(kSecret, "v1\nshop1\ncustomer-42\n1700000900000"));
  EXPECT_EQ(IssueUserToken(kSecret, "shop1", "customer-42", kNow + kDefaultUserTokenTtlMs),
            expected);
}

TEST(UserTokenTest, KnownAnswer) {
  // Computed independently with Python: base64.urlsafe_b64encode(hmac.new(b"key",
  // b"v1\nt\nu\n1000", hashlib.sha256).digest()).rstrip(b"=")
  EXPECT_EQ(IssueUserToken("key", "t", "u", 1000),
            "v1.1000.L71dJ3_CQulqSskgwixTEOz-BH4-Hy7F3hMn7PeHKz4");
}

TEST(UserTokenTest, ValidTokenVerifiesUntilExpiry) {
  std::string token = IssueUserToken(kSecret, "shop1", "c42", kNow + 1000);
  EXPECT_TRUE(VerifyUserToken(Secrets(), token, "shop1", "c42", kNow).ok());
  EXPECT_TRUE(VerifyUserToken(Secrets(), token, "shop1", "c42", kNow + 999).ok());
  ExpectRejected(VerifyUserToken(Secrets(), token, "shop1", "c42", kNow + 1000));
  ExpectRejected(VerifyUserToken(Secrets(), token, "shop1", "c42", kNow + 100000));
}

TEST(UserTokenTest, AlteredTokensAreRejected) {
  std::string token = IssueUserToken(kSecret, "shop1", "c42", kNow + 60000);
  std::string later = IssueUserToken(kSecret, "shop1", "c42", kNow + 90000);
  // Later expiry with the earlier MAC.
  std::string extended = later.substr(0, later.rfind('.')) + token.substr(token.rfind('.'));
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  for (const std::string& bad :
       {std::string(), std::string("v1"), std::string("v1.."), extended, flipped,
        "v2" + token.substr(2), token + "=", token.substr(0, token.size() - 1),
        "v1.0" + token.substr(3), "v1.+" + token.substr(3), token + token}) {
    ExpectRejected(VerifyUserToken(Secrets(), bad, "shop1", "c42", kNow));
  }
}

TEST(UserTokenTest, BoundToUserAndTenant) {
  std::string token = IssueUserToken(kSecret, "shop1", "c42", kNow + 60000);
  ExpectRejected(VerifyUserToken(Secrets(), token, "shop1", "c43", kNow));
  ExpectRejected(VerifyUserToken(Secrets(), token, "shop2", "c42", kNow));
  ExpectRejected(VerifyUserToken(Secrets(), token, "shop1\nc42", "", kNow));
  // Separators cannot be smuggled in an id.
  EXPECT_EQ(IssueUserToken(kSecret, "shop1\nx", "c42", kNow + 60000), "");
  EXPECT_EQ(IssueUserToken(kSecret, "shop1", "", kNow + 60000), "");
}

TEST(UserTokenTest, PreviousSecretWorksDuringRotation) {
  std::string old_token = IssueUserToken(kOldSecret, "shop1", "c42", kNow + 60000);
  std::string new_token = IssueUserToken(kSecret, "shop1", "c42", kNow + 60000);
  ExpectRejected(VerifyUserToken({kSecret, ""}, old_token, "shop1", "c42", kNow));
  EXPECT_TRUE(VerifyUserToken({kSecret, kOldSecret}, old_token, "shop1", "c42", kNow).ok());
  EXPECT_TRUE(VerifyUserToken({kSecret, kOldSecret}, new_token, "shop1", "c42", kNow).ok());
  ExpectRejected(VerifyUserToken({"", ""}, new_token, "shop1", "c42", kNow));
  std::string foreign =
      IssueUserToken("another-secret-0123456789abcdef-0123", "shop1", "c42", kNow + 60000);
  ExpectRejected(VerifyUserToken({kSecret, kOldSecret}, foreign, "shop1", "c42", kNow));
}

TEST(UserTokenTest, ExpiryTooFarAheadIsRejected) {
  std::string day = IssueUserToken(kSecret, "shop1", "c42", kNow + kDefaultUserTokenMaxTtlMs);
  std::string more = IssueUserToken(kSecret, "shop1", "c42", kNow + kDefaultUserTokenMaxTtlMs + 1);
  EXPECT_TRUE(VerifyUserToken(Secrets(), day, "shop1", "c42", kNow).ok());
  ExpectRejected(VerifyUserToken(Secrets(), more, "shop1", "c42", kNow));
  // Microseconds by mistake.
  std::string micros = IssueUserToken(kSecret, "shop1", "c42", (kNow + 60000) * 1000);
  ExpectRejected(VerifyUserToken(Secrets(), micros, "shop1", "c42", kNow));
  // Seconds by mistake: long expired.
  std::string seconds = IssueUserToken(kSecret, "shop1", "c42", (kNow + 60000) / 1000);
  ExpectRejected(VerifyUserToken(Secrets(), seconds, "shop1", "c42", kNow));
}

TEST(UserTokenTest, MessagesNeverContainTheToken) {
  std::string token = IssueUserToken(kSecret, "shop1", "c42", kNow + 60000);
  std::string mac = token.substr(token.rfind('.') + 1);
  for (const auto& s : {VerifyUserToken(Secrets(), token, "shop1", "c43", kNow),
                        VerifyUserToken(Secrets(), token, "shop1", "c42", kNow + 120000),
                        VerifyUserToken(Secrets(), token + "x", "shop1", "c42", kNow)}) {
    std::string text = s.ToString() + s.reason + s.field;
    EXPECT_EQ(text.find(mac), std::string::npos);
    EXPECT_EQ(text.find(kSecret), std::string::npos);
  }
}

TEST(CryptoTest, Base64UrlAndSha256KnownAnswers) {
  EXPECT_EQ(Base64UrlEncode(std::string_view("")), "");
  EXPECT_EQ(Base64UrlEncode(std::string_view("f")), "Zg");
  EXPECT_EQ(Base64UrlEncode(std::string_view("fo")), "Zm8");
  EXPECT_EQ(Base64UrlEncode(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(Base64UrlEncode(std::string_view("\xfb\xff", 2)), "-_8");
  // FIPS 180-2 "abc".
  EXPECT_EQ(Base64UrlEncode(Sha256("abc")), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
  // RFC 4231 test case 2.
  EXPECT_EQ(Base64UrlEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM");
  EXPECT_TRUE(ConstantTimeEquals(std::string_view("abc"), std::string_view("abc")));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("abc"), std::string_view("abd")));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("abc"), std::string_view("ab")));
  auto r = RandomBytes(32);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 32u);
}

}  // namespace
}  // namespace streamrec::auth
