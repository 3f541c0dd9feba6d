#pragma once
// The daemon's own log: spdlog to stderr.
//
// Under systemd (JOURNAL_STREAM set) each line starts with a "<N>" syslog
// priority that journald reads, and carries no timestamp (the journal adds
// one). Otherwise lines carry a local timestamp. Call from the main thread.

#include <string>

#include "daemon/base/status.h"

namespace relsupd {

// Installs the stderr logger as spdlog's default.
void SetupLogging();
// trace|debug|info|warn|error.
Status SetLogLevel(const std::string& level);

}  // namespace relsupd
