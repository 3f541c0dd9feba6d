#pragma once
// What both relsupd executables share: the root CLI11 app and its parsing.

#include <CLI/CLI.hpp>

namespace relsupd::cli {

// The root app with --version; `relsupd` with one required subcommand.
void SetUpRoot(CLI::App& app);
// Adds --version to every subcommand, however deep (after they exist).
void AddVersionEverywhere(CLI::App& app);
struct CtlContext;
// Adds `help [VERB...]` under `parent`: prints VERB's --help (the parent's
// without VERB); an unknown VERB is a usage error naming the closest verb.
void AddHelpVerb(CLI::App& parent, CtlContext* ctx);
// Parses; returns -1 when the chosen subcommand ran, else the exit code for
// help (0), version (0) or a usage error (2). A usage error is printed as
// "relsupd: ..." (JSON on stdout under --json, see ctl.h); a word where a
// subcommand was due is "unknown command 'X'; did you mean 'Y'?".
int Parse(CLI::App& app, int argc, char** argv);

}  // namespace relsupd::cli
