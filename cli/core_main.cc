// relsupd-core: the full relsupd, `daemon`, `build` and `ctl`.
//
// `relsupd daemon ...` and `relsupd build ...` exec this binary (same pid,
// same arguments), so the `relsupd` that operators and scripts run for
// `ctl` stays small and starts in about a millisecond.
#include <CLI/CLI.hpp>

#include "cli/build.h"
#include "cli/cli_app.h"
#include "cli/ctl.h"
#include "cli/ctl_deploy.h"
#include "daemon/main.h"
#include "daemon/reexec/probe.h"

int main(int argc, char** argv) {
  using namespace relsupd;
  CLI::App app;
  cli::SetUpRoot(app);

  DaemonOptions daemon_options;
  int daemon_exit = 0;
  CLI::App* daemon = app.add_subcommand(
      "daemon", "Run the release supervisor daemon in the foreground");
  daemon->add_option("--config", daemon_options.config_path,
                     "Daemon config (YAML); without it, embedded defaults")
      ->check(CLI::ExistingFile);
  daemon->add_option("--state-dir", daemon_options.state_dir,
                     "State directory (overrides the config; default "
                     "/var/lib/relsupd)");
  daemon->add_option("--socket", daemon_options.socket,
                     "Control socket path (overrides the config; default "
                     "/run/relsupd/relsupd.sock)");
  // Hidden (no group): the running daemon asks a binary it is about to
  // re-exec what it reads (daemon/reexec/probe.h). Touches no state.
  bool reexec_probe = false;
  daemon->add_flag("--reexec-probe", reexec_probe)->group("");
  daemon->footer(
      "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP re-reads the config.");
  daemon->callback([&] {
    daemon_exit = reexec_probe ? RunReexecProbe() : RunDaemon(daemon_options);
  });

  cli::CtlContext ctl;
  cli::AddCtlCommand(app, &ctl);
  cli::AddDeployVerb(*app.get_subcommand("ctl"), &ctl);
  int build_exit = 0;
  cli::AddBuildCommand(app, &build_exit);
  cli::AddVersionEverywhere(app);

  if (int rc = cli::Parse(app, argc, argv); rc >= 0) return rc;
  if (daemon->parsed()) return daemon_exit;
  if (app.got_subcommand("build")) return build_exit;
  return ctl.exit_code;
}
