#pragma once
// Failpoints for crash tests: RELSUPD_FAILPOINT=NAME makes the process
// _exit(137) when it reaches Failpoint("NAME"), as if killed there.
// Read once from the environment; any thread.

#include <string_view>

namespace relsupd {

void Failpoint(std::string_view name);

}  // namespace relsupd
