#pragma once
// Failpoints for crash and fault tests: RELSUPD_FAILPOINT=NAME makes the
// process _exit(137) when it reaches Failpoint("NAME"), as if killed there,
// or makes FailpointFails("NAME") true, where the caller then fails as the
// real operation could (an injected error; the process carries on).
// Read once from the environment; any thread.

#include <string_view>

namespace relsupd {

void Failpoint(std::string_view name);
[[nodiscard]] bool FailpointFails(std::string_view name);
// With RELSUPD_FAILPOINT=NAME, waits until the file RELSUPD_FAILPOINT_GATE
// names exists (sleeping, at most 60 s), after creating GATE.reached: a
// test holds a worker thread's job in flight. Never called on the loop thread.
void FailpointWait(std::string_view name);

}  // namespace relsupd
