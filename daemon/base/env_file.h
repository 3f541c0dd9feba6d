#pragma once
// Env files: the KEY=VALUE lines `relsupd ctl release create --env-file`
// reads. '#' comment lines and blank lines are skipped, a leading "export "
// is dropped, and one pair of matching quotes around a value is removed.
// A pure function of the text (the CLI reads the file); any thread.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/status.h"

namespace relsupd {

// The assignments in file order (a key given twice appears twice; the
// caller's map keeps the last). An InvalidArgument naming `name` and the
// line for a line that is not KEY=VALUE: "app.env:3: expected KEY=VALUE".
Result<std::vector<std::pair<std::string, std::string>>> ParseEnvFile(
    std::string_view text, const std::string& name);

// A config key as a release's environment takes it: [A-Za-z_][A-Za-z0-9_]*,
// at most 255 bytes, and none of relsupd's own (RELSUPD_*, LISTEN_*,
// NOTIFY_SOCKET). The CLI checks before it builds or imports anything; the
// daemon checks again.
Status ValidateConfigKey(const std::string& key);

}  // namespace relsupd
