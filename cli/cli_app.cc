#include "cli/cli_app.h"

#include <csignal>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "cli/ctl.h"
#include "daemon/base/suggest.h"
#include "daemon/base/version.h"

namespace relsupd::cli {
namespace {

// "relsupd ctl scale": the names from the root down to `app`.
std::string CommandPath(const CLI::App* app) {
  std::string path;
  for (; app != nullptr; app = app->get_parent())
    path = app->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

// The subcommand the parse got to: the last one chosen at each level.
CLI::App* Deepest(CLI::App& app) {
  CLI::App* cur = &app;
  for (;;) {
    auto chosen = cur->get_subcommands();
    if (chosen.empty()) return cur;
    cur = chosen.back();
  }
}

std::vector<std::string> SubcommandNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({}))
    if (!sub->get_name().empty()) names.push_back(sub->get_name());
  return names;
}

// --json before any "--": errors are then JSON too (see ctl.h).
bool WantsJson(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

// For a word the parse did not take where a subcommand was due:
// "unknown command 'actvate' for 'relsupd ctl'; did you mean 'activate'?".
// Empty when the error is of another kind.
std::string UnknownCommand(CLI::App& app) {
  CLI::App* at = Deepest(app);
  const std::vector<std::string> names = SubcommandNames(*at);
  if (names.empty()) return "";
  for (const std::string& word : app.remaining(true)) {
    if (word.empty() || word[0] == '-') continue;
    std::string text = "unknown command '" + word + "'";
    if (auto close = ClosestMatch(word, names)) {
      text += "; did you mean '" + *close + "'?";
    } else {
      text += " for '" + CommandPath(at) + "'; commands: ";
      for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
    }
    return text + "\nRun '" + CommandPath(at) + " --help' for more.";
  }
  return "";
}

// For a command that needs a subcommand and got none: "'relsupd ctl app'
// needs a command: apply, create, list, show". Empty for other errors.
std::string MissingCommand(CLI::App& app, const CLI::ParseError& e) {
  CLI::App* at = Deepest(app);
  const std::vector<std::string> names = SubcommandNames(*at);
  if (names.empty() || !at->get_subcommands().empty() ||
      std::string(e.what()).find("subcommand") == std::string::npos)
    return "";
  std::string text = "'" + CommandPath(at) + "' needs a command: ";
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text + "\nRun '" + CommandPath(at) + " --help' for more.";
}

}  // namespace

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

void AddHelpVerb(CLI::App& parent, CtlContext* ctx) {
  auto words = std::make_shared<std::vector<std::string>>();
  CLI::App* help = parent.add_subcommand(
      "help", "Show the help of VERB (e.g. 'help activate', 'help build import')");
  help->add_option("VERB", *words, "Verb, and subverb where it has them");
  help->callback([&parent, ctx, words] {
    CLI::App* at = &parent;
    for (const std::string& word : *words) {
      CLI::App* next = nullptr;
      for (CLI::App* sub : at->get_subcommands({}))
        if (sub->get_name() == word) next = sub;
      if (next == nullptr) {
        std::string text = "unknown command '" + word + "'";
        if (auto close = ClosestMatch(word, SubcommandNames(*at)))
          text += "; did you mean '" + *close + "'?";
        text += "\nRun '" + CommandPath(at) + " --help' for the list.";
        return ctx->Fail(InvalidArgument(text), kExitUsage);
      }
      at = next;
    }
    // The formatter itself: App::help() would print the help of the
    // subcommand chosen under `at` (`help`, when no VERB was named).
    std::cout << at->get_formatter()->make_help(at, CommandPath(at), CLI::AppFormatMode::Normal);
    ctx->exit_code = kExitOk;
  });
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
    std::string message = UnknownCommand(app);
    if (message.empty()) message = MissingCommand(app, e);
    if (message.empty()) {
      CLI::App* at = Deepest(app);
      message = std::string(e.what()) + "\nRun '" + CommandPath(at) + " --help' for more.";
    }
    ReportError(WantsJson(argc, argv), kExitUsage, "", message);
    return kExitUsage;
  } catch (const rpc::Json::exception& e) {
    // An answer of another shape than this CLI reads (a daemon of another
    // version): said once, never an abort.
    ReportError(WantsJson(argc, argv), kExitUnreachable, "",
                std::string("unexpected answer from the daemon: ") + e.what());
    return kExitUnreachable;
  }
  return -1;
}

}  // namespace relsupd::cli
