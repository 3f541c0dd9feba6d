#pragma once
// The `build:` section of an app's relsupd.yaml, read by `relsupd build`.
//
//   build:
//     command: make dist    # run with /bin/sh -c in a scratch copy of DIR
//     output: dist          # what to pack, relative to DIR; default "."
//
// Only `build:` is read here; other top-level keys (`processes`, ...) belong
// to the release stage and are validated there. Unknown keys inside `build:`,
// wrong types and output paths that are absolute or climb with `..` are
// errors naming file, line and column. Value types; any thread.

#include <string>

#include "daemon/base/status.h"

namespace relsupd {

inline constexpr char kBuildSpecFile[] = "relsupd.yaml";
inline constexpr size_t kMaxBuildSpecBytes = 1 << 20;

struct BuildSpec {
  std::string command;       // empty: nothing to run, pack DIR as it is
  std::string output = ".";  // normalized: no "." or empty components

  bool operator==(const BuildSpec&) const = default;
};

// Parses the text of a relsupd.yaml; `filename` is used only in messages.
// A document without `build:` (or with `build:` empty) gives the defaults.
Result<BuildSpec> ParseBuildSpec(const std::string& text,
                                 const std::string& filename);

// Reads DIR/relsupd.yaml; a missing file gives the defaults.
Result<BuildSpec> LoadBuildSpec(const std::string& dir);

// Checks and normalizes a build output path: it must be relative and have no
// ".." component; "./dist/" becomes "dist" and "./" becomes ".". An empty
// path is an error. Errors name `path`.
Result<std::string> NormalizeBuildOutput(const std::string& path);

}  // namespace relsupd
