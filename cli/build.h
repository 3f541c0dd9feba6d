#pragma once
// `relsupd build DIR -o FILE`: the build stage (no daemon needed).
//
// BuildArtifact copies DIR into a private scratch directory (without `.git`,
// and without FILE if it lies inside DIR), runs the `build.command` of
// DIR/relsupd.yaml there with /bin/sh -c, and packs `build.output` of the
// scratch copy as a reproducible tarball: entries sorted bytewise by path,
// pax (restricted) headers, mtime fixed, owner 0:0 with no names, modes
// normalized to 0644/0755, no xattrs, ACLs, atime or ctime, and compressed
// without timestamps or names. The same input gives the same bytes, and so
// the same sha256. FILE is written as FILE.tmp and renamed into place; on any
// failure neither is left behind, and the scratch directory is always
// removed. Runs on the calling thread; blocks until the build is done.

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace relsupd::cli {

enum class ArchiveFormat { kTarGz, kTarZst, kTar };

// "tar.gz", "tar.zst", "tar".
std::string_view ArchiveFormatName(ArchiveFormat format);
Result<ArchiveFormat> ParseArchiveFormat(std::string_view name);
// From FILE's suffix: .tar.gz/.tgz, .tar.zst/.tzst, .tar; nullopt otherwise.
std::optional<ArchiveFormat> ArchiveFormatFromFileName(std::string_view file);

// The entries' fixed mtime: $SOURCE_DATE_EPOCH if set (a non-negative
// decimal integer), else 0.
Result<int64_t> SourceDateEpoch();

struct BuildOptions {
  std::string dir;          // source directory (REQUIRES: non-empty)
  std::string output_file;  // artifact to write (REQUIRES: non-empty)
  ArchiveFormat format = ArchiveFormat::kTarGz;
  std::optional<int64_t> mtime;      // unset: SourceDateEpoch()
  std::ostream* progress = nullptr;  // one-line notes for the user, if set
};

struct BuildReport {
  // Set when build.command ran and failed: the exit code to pass on (the
  // command's exit status, or 1 if a signal killed it).
  std::optional<int> command_exit_code;
  size_t entries = 0;             // entries in the artifact
  bool has_process_file = false;  // relsupd.yaml or Procfile at its root
};

// Runs the build stage; returns the artifact's sha256 (64 hex digits).
// `report`, if given, is filled in as far as the build got.
Result<std::string> BuildArtifact(const BuildOptions& options,
                                  BuildReport* report = nullptr);

// Packs the tree at `root` (a directory) into `file` as described above:
// writes file.tmp, renames it to `file`, returns the sha256. Symlinks must be
// relative and stay inside `root`; any other non-regular file is an error
// naming its path.
Result<std::string> PackTree(const std::string& root, const std::string& file,
                             ArchiveFormat format, int64_t mtime,
                             size_t* entries = nullptr);

// Adds `build` under `root`; its exit code lands in *exit_code.
void AddBuildCommand(CLI::App& root, int* exit_code);

}  // namespace relsupd::cli
