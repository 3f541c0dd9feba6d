#include "tests/release/release_fixture.h"

#include <sqlite3.h>

#include "tests/support/failure.h"

namespace relsupd::release_test {

using support::Fail;

// --- Stage ---

Stage::Stage(std::string config, std::vector<std::string> env, std::string app,
             std::vector<std::string> app_args, std::string binary)
    : app_(std::move(app)), binary_(std::move(binary)) {
  if (!config.empty()) config_path_ = dir_.WriteFile("relsupd.yaml", config);
  Restart(std::move(env));
  if (app_.empty()) return;
  std::vector<std::string> create = {"app", "create", app_};
  create.insert(create.end(), app_args.begin(), app_args.end());
  CtlOk(create);
}

// The daemon stops before TempDir removes its state dir.
Stage::~Stage() { daemon_.reset(); }

std::string Stage::Slot(int64_t n) const {
  return state() + "/apps/" + app_ + "/releases/v" + std::to_string(n);
}

std::string Stage::BuildsDir() const { return state() + "/apps/" + app_ + "/builds"; }

void Stage::Restart(std::vector<std::string> env, std::vector<std::string> wrap) {
  if (daemon_ && daemon_->running()) Fail("Restart: the daemon is still running");
  daemon_.reset();
  e2e::DaemonOptions options;
  options.config = config_path_;
  options.env = std::move(env);
  options.wrap = std::move(wrap);
  options.binary = binary_;
  daemon_ = std::make_unique<e2e::DaemonProcess>(dir_, options);
}

void Stage::Stop() {
  e2e::ExitStatus st = daemon_->Terminate();
  if (!st.Exited(0)) Fail("daemon did not stop cleanly: " + st.ToString() + "\n" + daemon_->Log());
}

e2e::ProcResult Stage::Ctl(const std::vector<std::string>& args,
                           const e2e::RunOptions& options) {
  return e2e::RunCtl(socket(), args, options);
}

std::string Stage::CtlOk(const std::vector<std::string>& args) {
  return e2e::CtlOk(socket(), args);
}

Json Stage::CtlJson(const std::vector<std::string>& args) {
  return e2e::CtlJson(socket(), args);
}

std::string Stage::Artifact(const std::string& name, const std::vector<Entry>& entries,
                            Filter filter) {
  const std::string path = dir_.Path(name);
  WriteArchive(path, entries, filter);
  ++artifacts_;
  return path;
}

Json Stage::Import(const std::string& file) {
  return CtlJson({"build", "import", app_, file});
}

std::string Stage::Create(const std::string& build_id, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"release", "create", app_, "--build", build_id};
  all.insert(all.end(), args.begin(), args.end());
  std::string out = CtlOk(all);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Json Stage::Releases() { return CtlJson({"releases", app_}); }

int64_t LedgerReleaseRows(const std::string& ledger_path, const std::string& app) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(ledger_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    Fail("cannot open " + ledger_path);
  }
  sqlite3_busy_timeout(db, 5'000);
  sqlite3_stmt* st = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM releases WHERE app=?", -1, &st, nullptr) ==
      SQLITE_OK) {
    sqlite3_bind_text(st, 1, app.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (n < 0) Fail("cannot count releases in " + ledger_path);
  return n;
}

}  // namespace relsupd::release_test
