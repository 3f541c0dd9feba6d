#pragma once
// Status and Result<T>: how every relsupd operation reports failure.
//
// Operations return a Status (or a Result<T> holding a value or a Status) and
// never throw. errno becomes a Status once, at the system call, through
// Status::FromErrno. Exceptions from libraries are caught at the module
// boundary and turned into a Status with context. Value types; any thread.

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace relsupd {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // bad input from a caller or a file
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // the named thing exists already
  kPermissionDenied,    // the caller lacks the right
  kFailedPrecondition,  // the system is not in a state that allows it
  kBusy,                // something else holds it (a lock, a switch)
  kIoError,             // a system call failed
  kCorruption,          // stored data is not what it must be
  kUnavailable,         // a peer could not be reached
  kInternal,            // a bug or an unexpected library failure
};

// Returns the lower-case name of `code`, e.g. "not found".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, int err = 0)
      : code_(code), message_(std::move(message)), errno_(err) {}

  static Status Ok() { return Status(); }
  // Builds an I/O error from errno (or `err`): "<what>: <strerror>".
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  int error_number() const { return errno_; }
  // "not found: app 'shop' does not exist"
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;
  // Marks a status as used when a caller deliberately drops it.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  int errno_ = 0;
};

// InvalidArgument("app 'x' ..."), NotFound(...) and the rest below: a
// Status of that code with the message.
template <StatusCode kCode>
Status StatusWithCode(std::string message) {
  return Status(kCode, std::move(message));
}
inline constexpr auto& InvalidArgument =
    StatusWithCode<StatusCode::kInvalidArgument>;
inline constexpr auto& NotFound = StatusWithCode<StatusCode::kNotFound>;
inline constexpr auto& AlreadyExists =
    StatusWithCode<StatusCode::kAlreadyExists>;
inline constexpr auto& PermissionDenied =
    StatusWithCode<StatusCode::kPermissionDenied>;
inline constexpr auto& FailedPrecondition =
    StatusWithCode<StatusCode::kFailedPrecondition>;
inline constexpr auto& Corruption = StatusWithCode<StatusCode::kCorruption>;
inline constexpr auto& Internal = StatusWithCode<StatusCode::kInternal>;

// Result<T>: a T or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define RELSUPD_CONCAT_INNER(a, b) a##b
#define RELSUPD_CONCAT(a, b) RELSUPD_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define RETURN_IF_ERROR(expr) \
  RELSUPD_RETURN_IF_ERROR_IMPL(RELSUPD_CONCAT(relsupd_status_, __COUNTER__), expr)
#define RELSUPD_RETURN_IF_ERROR_IMPL(var, expr) \
  do {                                          \
    ::relsupd::Status var = (expr);             \
    if (!var.ok()) return var;                  \
  } while (0)

// ASSIGN_OR_RETURN(auto x, MakeX()); returns the Status if MakeX failed.
#define ASSIGN_OR_RETURN(lhs, expr)                                 \
  auto RELSUPD_CONCAT(relsupd_result_, __LINE__) = (expr);          \
  if (!RELSUPD_CONCAT(relsupd_result_, __LINE__).ok())              \
    return RELSUPD_CONCAT(relsupd_result_, __LINE__).status();      \
  lhs = std::move(RELSUPD_CONCAT(relsupd_result_, __LINE__)).value()

}  // namespace relsupd
