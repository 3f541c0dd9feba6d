#include "tests/support/failure.h"

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace relsupd::support {
namespace {

FailureHandler handler = nullptr;
int failures = 0;

}  // namespace

void SetFailureHandler(FailureHandler h) { handler = h; }

void ReportFailure(const std::string& message) {
  if (handler != nullptr) {
    handler(message);
    return;
  }
  ++failures;
  std::cerr << "FAILURE: " << message << '\n';
}

int FailureCount() { return failures; }

void Fail(const std::string& what) { throw std::runtime_error(what); }

void FailErrno(const std::string& what) {
  Fail(what + ": " + std::strerror(errno));
}

std::string RefusalMessage(const Status& status) {
  if (status.code() == StatusCode::kInvalidArgument) return status.message();
  ReportFailure("expected a refusal (invalid argument), got: " +
                status.ToString());
  return "";
}

}  // namespace relsupd::support
