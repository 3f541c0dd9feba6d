#pragma once
// The `build:` section of an app's relsupd.yaml, read by `relsupd build`.
//
//   build:
//     command: make dist    # run with /bin/sh -c in a scratch copy of DIR
//     output: dist          # what to pack, relative to DIR; default "."
//
// Only `build:` is read here; the build stage checks the rest of the file
// with CheckProcessFiles (process_file.h). Unknown keys inside `build:`,
// wrong types and output paths that are absolute or climb with `..` are
// errors naming file, line and column, all of them, one per line. Value
// types; any thread.

#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace YAML {
class Node;
}

namespace relsupd {

namespace yaml {
class Errors;
}

// The keys of `build:`.
inline constexpr std::string_view kBuildKeys[] = {
    "command", "output"};

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

// Parses the value of `build:` (not null); errors go to `errors`.
BuildSpec ParseBuildSection(const std::string& file, const YAML::Node& build,
                            yaml::Errors* errors);

// Reads DIR/relsupd.yaml; a missing file gives the defaults.
Result<BuildSpec> LoadBuildSpec(const std::string& dir);

// Checks and normalizes a build output path: it must be relative and have no
// ".." component; "./dist/" becomes "dist" and "./" becomes ".". An empty
// path is an error. Errors name `path`.
Result<std::string> NormalizeBuildOutput(const std::string& path);

}  // namespace relsupd
