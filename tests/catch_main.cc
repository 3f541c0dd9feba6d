// The Catch2 main shared by every test binary. It routes the support
// library's failures (a daemon that did not stop cleanly, a sanitizer
// report: tests/support/failure.h) into the running test as FAIL_CHECK.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "tests/support/failure.h"

namespace {

void FailRunningTest(const std::string& message) { FAIL_CHECK(message); }

// Installed before main() runs any test.
[[maybe_unused]] const bool kHandlerInstalled = [] {
  relsupd::support::SetFailureHandler(FailRunningTest);
  return true;
}();

}  // namespace
