// Status and Result<T>: expected failures travel as values from the core to serve/,
// which alone maps them to HTTP codes.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace streamrec::common {

enum class Code {
  kOk,
  kInvalidArgument,  //!< bad input from a client (HTTP 400)
  kNotFound,         //!< HTTP 404
  kTooLarge,         //!< body or batch over a limit (HTTP 413)
  kForbidden,        //!< e.g. tenant not allowed (HTTP 403)
  kUnauthenticated,  //!< missing or invalid credentials (HTTP 401)
  kRateLimited,      //!< a client over its request rate (HTTP 429)
  kUnavailable,      //!< shutting down / overloaded (HTTP 503)
  kInternal,         //!< storage or programmer error (HTTP 500)
};

const char* CodeName(Code code);

//! A failure with a machine-readable `reason` (e.g. "invalid_json"), the offending
//! `field` when there is one, and a human message.
struct Status {
  Code code = Code::kOk;
  std::string reason;
  std::string message;
  std::string field;

  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return {}; }
  static Status Invalid(std::string reason, std::string message, std::string field = {}) {
    return {Code::kInvalidArgument, std::move(reason), std::move(message), std::move(field)};
  }
  static Status Internal(std::string message) {
    return {Code::kInternal, "internal", std::move(message), {}};
  }
  static Status Make(Code code, std::string reason, std::string message,
                     std::string field = {}) {
    return {code, std::move(reason), std::move(message), std::move(field)};
  }
  std::string ToString() const;
};

//! Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace streamrec::common
