// The relsupd executable: `daemon`, `ctl` and `build` subcommands.
#include <CLI/CLI.hpp>

#include <csignal>
#include <functional>
#include <iostream>

#include "cli/build.h"
#include "cli/ctl.h"
#include "daemon/base/version.h"
#include "daemon/main.h"

int main(int argc, char** argv) {
  using namespace relsupd;
  // A daemon that hangs up is reported as such, not by a fatal SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app(
      "relsupd: on-host release supervisor (build, release, run).\n"
      "Stores artifacts by digest, makes immutable numbered releases and "
      "runs the active release's processes.",
      "relsupd");
  app.set_version_flag("--version", std::string("relsupd ") + kVersion);
  app.require_subcommand(1);

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
  daemon->footer(
      "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP re-reads the config.");
  daemon->callback([&] { daemon_exit = RunDaemon(daemon_options); });

  cli::CtlContext ctl;
  cli::AddCtlCommand(app, &ctl);
  int build_exit = 0;
  cli::AddBuildCommand(app, &build_exit);
  // --version and --help answer on every subcommand, however deep.
  std::function<void(CLI::App*)> add_version = [&](CLI::App* parent) {
    for (CLI::App* sub : parent->get_subcommands({})) {
      sub->set_version_flag("--version", std::string("relsupd ") + kVersion);
      add_version(sub);
    }
  };
  add_version(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return cli::kExitUsage;
  }
  if (daemon->parsed()) return daemon_exit;
  if (app.got_subcommand("build")) return build_exit;
  return ctl.exit_code;
}
