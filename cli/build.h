#pragma once
// `relsupd build DIR -o FILE`: the build stage (no daemon needed).

#include <CLI/CLI.hpp>

namespace relsupd::cli {

// Adds `build` under `root`; its exit code lands in *exit_code.
void AddBuildCommand(CLI::App& root, int* exit_code);

}  // namespace relsupd::cli
