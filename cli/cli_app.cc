#include "cli/cli_app.h"

#include <csignal>
#include <functional>
#include <iostream>

#include "cli/ctl.h"
#include "daemon/base/version.h"

namespace relsupd::cli {

void SetUpRoot(CLI::App& app) {
  // A daemon that hangs up is reported as such, not by a fatal SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  app.description(
      "relsupd: on-host release supervisor (build, release, run).\n"
      "Stores artifacts by digest, makes immutable numbered releases and "
      "runs the active release's processes.");
  app.name("relsupd");
  app.set_version_flag("--version", std::string("relsupd ") + kVersion);
  app.require_subcommand(1);
}

void AddVersionEverywhere(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->set_version_flag("--version", std::string("relsupd ") + kVersion);
    AddVersionEverywhere(*sub);
  }
}

int Parse(CLI::App& app, int argc, char** argv) {
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
    return kExitUsage;
  } catch (const rpc::Json::exception& e) {
    // An answer of another shape than this CLI reads (a daemon of another
    // version): said once, never an abort.
    std::cerr << "relsupd: unexpected answer from the daemon: " << e.what() << '\n';
    return kExitUnreachable;
  }
  return -1;
}

}  // namespace relsupd::cli
