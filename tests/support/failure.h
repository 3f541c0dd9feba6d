#pragma once
// How the support library reports a failure that is not the caller's to
// handle: a daemon that did not stop cleanly, a sanitizer report in a
// child's output. Such a failure must fail the running test (or bench) even
// though no check of the caller's saw it, yet the library has no test
// framework in it: the program installs a handler once (tests/catch_main.cc
// installs one that calls Catch2's FAIL_CHECK). Without one, the message
// goes to stderr and is counted, so a bench can exit non-zero.
//
// Set-up failures (a daemon that does not start, a socket that cannot be
// made) are different: the support library throws std::runtime_error for
// them, with a message that says why. Test thread only.

#include <string>

#include "daemon/base/status.h"

namespace relsupd::support {

using FailureHandler = void (*)(const std::string& message);

// Installs `handler` (nullptr: the default, stderr and count).
void SetFailureHandler(FailureHandler handler);

// Reports `message` through the installed handler.
void ReportFailure(const std::string& message);

// How many failures the default handler saw.
int FailureCount();

// Throws std::runtime_error(what); with Errno, what + ": " + strerror(errno).
[[noreturn]] void Fail(const std::string& what);
[[noreturn]] void FailErrno(const std::string& what);

// The message of `status`, which must refuse a bad input
// (StatusCode::kInvalidArgument); for any other status, reports a failure
// naming what it was and returns "", so a caller's check of the message
// fails too.
std::string RefusalMessage(const Status& status);

}  // namespace relsupd::support
