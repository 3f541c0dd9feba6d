// relsupd: the command operators run. `ctl` is handled here, by a binary
// that links only the control client; `daemon`, `build` and `ctl deploy`
// (which runs the build stage) exec relsupd-core, which holds the daemon
// and the build stage.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/cli_app.h"
#include "cli/ctl.h"
#include "cli/ctl_deploy.h"

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

// Runs relsupd-core with our arguments (same pid); returns only on failure.
int ExecCore(char** argv) {
  const std::string core = CorePath();
  ::execv(core.c_str(), argv);
  std::cerr << "relsupd: cannot run '" << core << "': " << std::strerror(errno) << '\n';
  return 1;
}

// `ctl help deploy`: deploy is relsupd-core's (see main), and so is its
// help. True when the verb after `ctl` and its options is help, followed
// by deploy.
bool HelpOfDeploy(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "ctl") != 0) return false;
  int i = 2;
  for (; i < argc && argv[i][0] == '-'; ++i)
    if (std::strcmp(argv[i], "--socket") == 0) ++i;  // its value
  return i + 1 < argc && std::strcmp(argv[i], "help") == 0 &&
         std::strcmp(argv[i + 1], "deploy") == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace relsupd;
  if (argc > 1 && (std::strcmp(argv[1], "daemon") == 0 ||
                   std::strcmp(argv[1], "build") == 0))
    return ExecCore(argv);
  if (HelpOfDeploy(argc, argv)) return ExecCore(argv);
  // Never destroyed: tearing the command tree down cost as much as a
  // third of a `ctl ps` run's own instructions. A global holds it, so leak
  // checkers see it reachable.
  static CLI::App* const kApp = new CLI::App();
  CLI::App& app = *kApp;
  cli::SetUpRoot(app);
  // Listed for --help; the real ones live in relsupd-core (exec'd above).
  app.add_subcommand("daemon", "Run the release supervisor daemon in the foreground")
      ->allow_extras();
  app.add_subcommand("build", "Build DIR into a reproducible artifact")->allow_extras();
  cli::CtlContext ctl;
  cli::AddCtlCommand(app, &ctl, cli::CtlVerbOf(argc, argv));
  // `ctl deploy` runs the build stage: relsupd-core parses it again, and
  // its --help is the real one.
  CLI::App* deploy = app.get_subcommand("ctl")->add_subcommand("deploy", cli::kDeployDescription);
  deploy->set_help_flag();
  deploy->prefix_command();
  deploy->fallthrough(false);  // all of it to relsupd-core, none to ctl
  deploy->callback([argv, &ctl] { ctl.exit_code = ExecCore(argv); });
  cli::AddVersionEverywhere(app);
  if (int rc = cli::Parse(app, argc, argv); rc >= 0) return rc;
  return ctl.exit_code;
}
