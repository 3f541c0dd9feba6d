// relsupd: the command operators run. `ctl` is handled here, by a binary
// that links only the control client; `daemon` and `build` exec
// relsupd-core, which holds the daemon and the build stage.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/cli_app.h"
#include "cli/ctl.h"

namespace {

// relsupd-core beside this binary (the build tree) or in
// ../libexec/relsupd/ (an installed package).
std::string CorePath() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string dir = ".";
  if (n > 0) {
    std::string exe(self, static_cast<size_t>(n));
    dir = exe.substr(0, exe.rfind('/'));
  }
  for (const std::string& candidate :
       {dir + "/relsupd-core", dir + "/../libexec/relsupd/relsupd-core"})
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  return dir + "/../libexec/relsupd/relsupd-core";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace relsupd;
  if (argc > 1 && (std::strcmp(argv[1], "daemon") == 0 ||
                   std::strcmp(argv[1], "build") == 0)) {
    const std::string core = CorePath();
    ::execv(core.c_str(), argv);
    std::cerr << "relsupd: cannot run '" << core << "': " << std::strerror(errno) << '\n';
    return 1;
  }
  CLI::App app;
  cli::SetUpRoot(app);
  // Listed for --help; the real ones live in relsupd-core (exec'd above).
  app.add_subcommand("daemon", "Run the release supervisor daemon in the foreground")
      ->allow_extras();
  app.add_subcommand("build", "Build DIR into a reproducible artifact")->allow_extras();
  cli::CtlContext ctl;
  cli::AddCtlCommand(app, &ctl);
  cli::AddVersionEverywhere(app);
  if (int rc = cli::Parse(app, argc, argv); rc >= 0) return rc;
  return ctl.exit_code;
}
