#include "auth/auth_config.h"

#include <cstdlib>

namespace streamrec::auth {

using common::Code;
using common::Status;

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

std::string Env(const GetEnv& getenv, const std::string& name) {
  if (name.empty()) return {};
  const char* v = getenv(name.c_str());
  return v ? std::string(v) : std::string();
}

Status TokenRejected() {
  return Status::Make(Code::kUnauthenticated, "invalid_user_token", std::string(kInvalidUserToken),
                      "token");
}

}  // namespace

common::Result<UserTokenSecrets> LoadUserTokenSecrets(const AuthConfig& config,
                                                      const GetEnv& getenv) {
  UserTokenSecrets secrets{Env(getenv, config.user_token_secret_env),
                           Env(getenv, config.user_token_previous_secret_env)};
  if (secrets.current.empty()) {
    if (config.require_user_token_for_logged_in || !config.allow_anonymous_duids) {
      return Status::Invalid(
          "missing_secret",
          "user tokens are required but " + config.user_token_secret_env + " is not set",
          config.user_token_secret_env);
    }
    if (!secrets.previous.empty()) {
      return Status::Invalid("missing_secret",
                             config.user_token_previous_secret_env + " is set but " +
                                 config.user_token_secret_env + " is not",
                             config.user_token_secret_env);
    }
    return secrets;
  }
  for (const auto& [value, name] : {std::pair{&secrets.current, &config.user_token_secret_env},
                                    {&secrets.previous, &config.user_token_previous_secret_env}}) {
    if (!value->empty() && value->size() < kMinUserTokenSecretLength) {
      return Status::Invalid("weak_secret",
                             *name + " must hold at least " +
                                 std::to_string(kMinUserTokenSecretLength) +
                                 " bytes (e.g. `openssl rand -base64 32`)",
                             *name);
    }
  }
  return secrets;
}

Status LoadBootstrapKey(KeyStore& keys, const AuthConfig& config, const GetEnv& getenv) {
  std::string plaintext = Env(getenv, config.admin_key_env);
  if (plaintext.empty()) return Status::Ok();
  auto status = keys.AddBootstrapKey(plaintext);
  if (!status.ok()) {
    // AddBootstrapKey names STREAMREC_ADMIN_KEY; say which variable was really read.
    status.field = config.admin_key_env;
  }
  return status;
}

std::string_view ExtractApiKey(std::string_view header_value) {
  std::string_view v = Trim(header_value);
  if (StartsWithNoCase(v, "bearer") && (v.size() == 6 || v[6] == ' ' || v[6] == '\t')) {
    return Trim(v.substr(6));
  }
  return v;
}

Status CheckAdmin(const KeyStore& keys, std::string_view authorization_header,
                  std::string_view tenant, std::string_view scope) {
  return keys.Verify(ExtractApiKey(authorization_header), tenant, scope);
}

Status CheckUserRead(const AuthConfig& config, const UserTokenSecrets& secrets,
                     std::string_view tenant, std::string_view user_id, std::string_view token,
                     bool is_logged_in_id, int64_t now_ms) {
  bool required =
      is_logged_in_id ? config.require_user_token_for_logged_in : !config.allow_anonymous_duids;
  if (token.empty()) return required ? TokenRejected() : Status::Ok();
  if (secrets.current.empty() && !required) return Status::Ok();
  return VerifyUserToken(secrets, token, tenant, user_id, now_ms, config.user_token_max_ttl_ms);
}

}  // namespace streamrec::auth
