#pragma once
// Helpers for the release-stage end-to-end tests: artifacts crafted with
// libarchive's writer (good ones and every kind of bad one), a daemon with
// one app on a temporary state dir (tests/e2e/harness.h), and looks at the
// state dir (slots, tmp/, objects/, builds/) and at ledger.db. Test thread
// only.

#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace relsupd::release_test {

using e2e::Json;

// --- artifacts ---

enum class Filter { kNone, kGzip, kZstd };

struct Entry {
  std::string path;
  unsigned type = 0100000;  // AE_IFREG
  unsigned perm = 0644;
  std::string body;      // a regular file's content
  uint64_t zeros = 0;    // or this many zero bytes
  std::string symlink;   // a symlink's target
  std::string hardlink;  // a hard link to this earlier entry
};

Entry File(std::string path, std::string body, unsigned perm = 0644);
Entry Zeros(std::string path, uint64_t bytes);
Entry Dir(std::string path, unsigned perm = 0755);
Entry Symlink(std::string path, std::string target);
Entry HardLink(std::string path, std::string to);
Entry Fifo(std::string path);
Entry CharDevice(std::string path);
// "web: ./bin/web".
Entry Procfile();
// `bytes` that do not compress (a fixed pseudo-random sequence).
std::string Noise(size_t bytes, uint32_t seed = 1);

// Writes a pax tar with `entries` to `file`. Throws on failure.
void WriteArchive(const std::string& file, const std::vector<Entry>& entries,
                  Filter filter = Filter::kGzip);

// --- the state dir ---

// Names in `dir` (empty when it does not exist).
std::vector<std::string> ListDir(const std::string& dir);
// Regular files under `objects_dir` with a link count of 1: no slot uses them.
int OrphanObjects(const std::string& objects_dir);
// lstat; throws when the path does not exist.
struct stat Lstat(const std::string& path);
bool Exists(const std::string& path);
std::string ReadText(const std::string& path);
// Replaces `path` (in a sealed slot: opens its directory for the owner
// first). Replaces rather than writes in place: slot files share their
// inode with the object store and other slots.
void ReplaceFile(const std::string& path, const std::string& content);
void RemoveFile(const std::string& path);

// --- a daemon with one app ---

class Stage {
 public:
  // Starts a daemon on a fresh dir and creates `app` (unless empty) with
  // `app create APP APP_ARGS...`. `config` is the daemon config's YAML text
  // (empty: none); `env` extra environment of the daemon.
  explicit Stage(std::string config = "", std::vector<std::string> env = {},
                 std::string app = "shop", std::vector<std::string> app_args = {});
  ~Stage();
  Stage(const Stage&) = delete;
  Stage& operator=(const Stage&) = delete;

  const std::string& app() const { return app_; }
  const e2e::TempDir& dir() const { return dir_; }
  e2e::DaemonProcess& daemon() { return *daemon_; }
  const std::string& socket() const { return daemon_->socket(); }
  std::string state() const { return dir_.Path("state"); }
  std::string Slot(int64_t n) const;
  std::string BuildsDir() const;
  std::string TmpDir() const { return state() + "/tmp"; }
  std::string ObjectsDir() const { return state() + "/objects"; }

  // Starts the daemon again (after it stopped or died), with `env`, its
  // argv behind `wrap` (e2e::DaemonOptions::wrap).
  void Restart(std::vector<std::string> env = {},
               std::vector<std::string> wrap = {});
  // Stops it with SIGTERM; it must exit 0.
  void Stop();

  e2e::ProcResult Ctl(const std::vector<std::string>& args,
                      const e2e::RunOptions& options = {});
  std::string CtlOk(const std::vector<std::string>& args);
  Json CtlJson(const std::vector<std::string>& args);

  // Writes `entries` as dir/NAME and returns its path.
  std::string Artifact(const std::string& name, const std::vector<Entry>& entries,
                       Filter filter = Filter::kGzip);
  // `build import` that must succeed: the JSON result.
  Json Import(const std::string& file);
  // `release create --build ID ARGS...` that must succeed: "vN".
  std::string Create(const std::string& build_id, const std::vector<std::string>& args = {});
  // `releases --json`.
  Json Releases();

 private:
  e2e::TempDir dir_;
  std::string config_path_;
  std::string app_;
  std::unique_ptr<e2e::DaemonProcess> daemon_;
  int artifacts_ = 0;
};

// Rows in ledger.db's releases table of `app` (opened read-only).
int64_t LedgerReleaseRows(const std::string& ledger_path, const std::string& app);

}  // namespace relsupd::release_test
