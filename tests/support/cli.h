#pragma once
// The CLI runner: the real `relsupd` binary run to completion, its stdout,
// stderr and exit status captured (process.h's RunProcess), and the
// daemon's methods called in-process through relsupd::Client. Set-up
// failures throw std::runtime_error (failure.h). Test thread only.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"

namespace relsupd::support {

using Json = nlohmann::json;

// The built relsupd binary (RELSUPD_BIN at build time).
std::string RelsupdBin();

// Runs `RELSUPD_BIN ARGS...`.
ProcResult RunRelsupd(const std::vector<std::string>& args,
                      const RunOptions& options = {});

// Runs `RELSUPD_BIN ctl --socket SOCKET ARGS...`.
ProcResult RunCtl(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options = {});

// RunCtl that must exit 0: returns stdout, throws with everything otherwise.
std::string CtlOk(const std::string& socket,
                  const std::vector<std::string>& args,
                  const RunOptions& options = {});
// `ctl --json ARGS...` that must exit 0: returns stdout parsed.
Json CtlJson(const std::string& socket, const std::vector<std::string>& args,
             const RunOptions& options = {});

// Calls `method` on the daemon in-process (relsupd::Client). Throws on a
// connection failure; returns the whole response object.
Json CallRaw(const std::string& socket, std::string_view method,
             Json params = Json::object());
// Like CallRaw, but returns "result" and throws on an error response.
Json Call(const std::string& socket, std::string_view method,
          Json params = Json::object());

}  // namespace relsupd::support
