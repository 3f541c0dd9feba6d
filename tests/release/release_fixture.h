#pragma once
// Helpers for the release-stage end-to-end tests: a daemon with one app on
// a temporary state dir, artifacts for it (tests/support/tar.h), and looks at
// the state dir (slots, tmp/, objects/, builds/) and at ledger.db. Test
// thread only.

#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"
#include "tests/support/fs.h"
#include "tests/support/tar.h"

namespace relsupd::release_test {

using e2e::Json;

// --- artifacts (tests/support/tar.h) and the state dir (tests/support/fs.h)

using support::CharDevice;
using support::Dir;
using support::Entry;
using support::Exists;
using support::Fifo;
using support::File;
using support::Filter;
using support::HardLink;
using support::ListDir;
using support::Lstat;
using support::Noise;
using support::OrphanObjects;
using support::Procfile;
using support::ReadText;
using support::RemoveFile;
using support::ReplaceFile;
using support::Symlink;
using support::WriteArchive;
using support::Zeros;

// --- a daemon with one app ---

class Stage {
 public:
  // Starts a daemon on a fresh dir and creates `app` (unless empty) with
  // `app create APP APP_ARGS...`. `config` is the daemon config's YAML text
  // (empty: none); `env` extra environment of the daemon; `binary` the
  // relsupd binary to run (empty: the build tree's).
  explicit Stage(std::string config = "", std::vector<std::string> env = {},
                 std::string app = "shop", std::vector<std::string> app_args = {},
                 std::string binary = "");
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
  std::string binary_;
  std::unique_ptr<e2e::DaemonProcess> daemon_;
  int artifacts_ = 0;
};

// Rows in ledger.db's releases table of `app` (opened read-only).
int64_t LedgerReleaseRows(const std::string& ledger_path, const std::string& app);

}  // namespace relsupd::release_test
