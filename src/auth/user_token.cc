#include "auth/user_token.h"

#include <charconv>

#include "auth/crypto.h"

namespace streamrec::auth {

namespace {

constexpr std::string_view kVersion = "v1";
constexpr size_t kMaxTokenLength = 128;
constexpr size_t kMaxIdLength = 1024;

bool IsSignableId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxIdLength &&
         id.find_first_of(std::string_view("\n\0", 2)) == std::string_view::npos;
}

std::string Mac(std::string_view secret, std::string_view tenant, std::string_view user_id,
                std::string_view expiry) {
  std::string msg;
  msg.reserve(kVersion.size() + tenant.size() + user_id.size() + expiry.size() + 3);
  msg.append(kVersion).append("\n").append(tenant).append("\n").append(user_id);
  msg.append("\n").append(expiry);
  return Base64UrlEncode(HmacSha256(secret, msg));
}

common::Status Invalid() {
  return common::Status::Make(common::Code::kUnauthenticated, "invalid_user_token",
                              std::string(kInvalidUserToken), "token");
}

}  // namespace

std::string IssueUserToken(std::string_view secret, std::string_view tenant,
                           std::string_view user_id, int64_t expires_ms) {
  if (!IsSignableId(tenant) || !IsSignableId(user_id) || expires_ms <= 0) return {};
  std::string expiry = std::to_string(expires_ms);
  return std::string(kVersion) + "." + expiry + "." + Mac(secret, tenant, user_id, expiry);
}

common::Status VerifyUserToken(const UserTokenSecrets& secrets, std::string_view token,
                               std::string_view tenant, std::string_view user_id, int64_t now_ms,
                               int64_t max_ttl_ms) {
  if (secrets.current.empty() || token.size() > kMaxTokenLength || !IsSignableId(tenant) ||
      !IsSignableId(user_id)) {
    return Invalid();
  }
  // v1.<expiry>.<mac>; the expiry is plain decimal digits, exactly as signed.
  if (!token.starts_with(kVersion) || token.size() <= kVersion.size() ||
      token[kVersion.size()] != '.') {
    return Invalid();
  }
  std::string_view rest = token.substr(kVersion.size() + 1);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 18) return Invalid();
  std::string_view expiry = rest.substr(0, dot);
  std::string_view mac = rest.substr(dot + 1);
  if (expiry[0] == '0' || mac.size() != Base64UrlLength(32) || !IsBase64Url(mac)) {
    return Invalid();
  }
  int64_t expires_ms = 0;
  auto [end, ec] = std::from_chars(expiry.data(), expiry.data() + expiry.size(), expires_ms);
  if (ec != std::errc() || end != expiry.data() + expiry.size()) return Invalid();

  // The previous secret is tried even when the current one matched, so timing does not
  // tell which one did.
  bool current = ConstantTimeEquals(Mac(secrets.current, tenant, user_id, expiry), mac);
  bool previous = !secrets.previous.empty() &&
                  ConstantTimeEquals(Mac(secrets.previous, tenant, user_id, expiry), mac);
  if (!(current || previous)) return Invalid();
  if (now_ms >= expires_ms || expires_ms - now_ms > max_ttl_ms) return Invalid();
  return common::Status::Ok();
}

}  // namespace streamrec::auth
