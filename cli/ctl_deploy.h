#pragma once
// `relsupd ctl deploy APP SRC`: the three stages in one command. SRC is a
// directory, built here by the build stage (cli/build.h) as the calling
// user, or an artifact file; then import, a release from the live release's
// config plus the given changes, and activate, each printed as it goes.
//
// It lives in relsupd-core beside the build stage; the small `relsupd`
// execs relsupd-core for it (cli/relsupd_main.cc). Main thread only.

#include <CLI/CLI.hpp>

#include "cli/ctl.h"

namespace relsupd::cli {

inline constexpr char kDeployDescription[] =
    "Build SRC (a directory) or take it as an artifact (tar, tar.gz, "
    "tar.zst), import it, make a release from the live release's config "
    "plus the given changes, and activate it, printing each stage";

// Adds `deploy` under `ctl`; its exit code lands in ctx->exit_code.
void AddDeployVerb(CLI::App& ctl, CtlContext* ctx);

}  // namespace relsupd::cli
