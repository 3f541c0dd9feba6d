#pragma once
// Small file-system helpers for tests and benches: read, write, list and
// look at paths. Errors throw std::runtime_error (failure.h) unless the
// function says it returns something else. Test thread only.

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

namespace relsupd::support {

// The whole file; "" when it cannot be read (a /proc file of a process
// that is gone, a log not written yet).
std::string ReadFileOrEmpty(const std::string& path);
// The whole file; throws when it cannot be read.
std::string ReadText(const std::string& path);
// Writes `content` to `path` (created 0644 or truncated).
void WriteText(const std::string& path, std::string_view content);
// Names in `dir`, sorted (empty when it does not exist).
std::vector<std::string> ListDir(const std::string& dir);
// lstat succeeds.
bool Exists(const std::string& path);
// lstat; throws when the path does not exist.
struct stat Lstat(const std::string& path);
// Replaces `path` (opening its directory for the owner first, as in a
// sealed slot). Replaces rather than writes in place: slot files share their
// inode with the object store and other slots.
void ReplaceFile(const std::string& path, const std::string& content);
// Unlinks `path` (opening its directory for the owner first).
void RemoveFile(const std::string& path);
// Regular files under `objects_dir` with a link count of 1: the objects of
// a store that no slot links (0 when the directory does not exist).
int OrphanObjects(const std::string& objects_dir);

}  // namespace relsupd::support
