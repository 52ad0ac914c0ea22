#include "common/status.h"

namespace streamrec::common {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kTooLarge: return "too_large";
    case Code::kForbidden: return "forbidden";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kRateLimited: return "rate_limited";
    case Code::kUnavailable: return "unavailable";
    case Code::kInternal: return "internal";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out = std::string(CodeName(code)) + " [" + reason + "]";
  if (!field.empty()) out += " field '" + field + "'";
  return out + ": " + message;
}

}  // namespace streamrec::common
