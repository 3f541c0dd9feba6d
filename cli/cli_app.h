#pragma once
// What both relsupd executables share: the root CLI11 app and its parsing.

#include <CLI/CLI.hpp>

namespace relsupd::cli {

// The root app with --version; `relsupd` with one required subcommand.
void SetUpRoot(CLI::App& app);
// Adds --version to every subcommand, however deep (after they exist).
void AddVersionEverywhere(CLI::App& app);
// Parses; returns -1 when the chosen subcommand ran, else the exit code for
// help (0), version (0) or a usage error (2).
int Parse(CLI::App& app, int argc, char** argv);

}  // namespace relsupd::cli
