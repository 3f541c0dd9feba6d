// Start-up recovery of interrupted switches (Switcher::Recover), and the
// atomic `current` link every switch goes through. Loop thread only.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "daemon/activate/switcher.h"
#include "daemon/base/release_id.h"
#include "daemon/store/fs.h"
#include "daemon/store/slots.h"

namespace relsupd {
namespace {

const Actor kDaemonActor{0, "relsupd"};

}  // namespace

Status SwitchCurrentLink(const std::string& app_dir,
                         const std::string& target) {
  const std::string tmp = app_dir + "/.current.tmp";
  const std::string link = app_dir + "/current";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno("remove '" + tmp + "'", errno);
  if (::symlink(target.c_str(), tmp.c_str()) != 0)
    return Status::FromErrno("symlink '" + tmp + "'", errno);
  // rename(2) replaces the old link in one step: a reader of current/ sees
  // the old release or the new one, never no release.
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno("rename '" + tmp + "' to '" + link + "'", err);
  }
  return SyncDir(app_dir);
}

void Switcher::Recover() {
  auto apps = ledger_->ListApps();
  if (!apps.ok()) return;
  for (const AppSpec& spec : *apps) {
    const std::string app = spec.name;
    auto state = ledger_->GetAppState(app);
    if (!state.ok()) continue;
    char buf[256];
    ssize_t n =
        ::readlink((AppDir(app) + "/current").c_str(), buf, sizeof(buf) - 1);
    std::string link = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    ReleaseId live = state->active;
    std::string want = live.empty() ? "" : "releases/" + live.ToString();
    std::string detail;
    if (!state->switching.empty()) {
      const ReleaseId pending = state->switching;
      if (live.empty()) {
        // An interrupted first activation: nothing to go back to, so it is
        // finished instead.
        live = pending;
        want = "releases/" + pending.ToString();
        Status s = ledger_->AppendEvent(
            app, EventKind::kActivated, pending, kDaemonActor,
            "recovered after an interrupted activation");
        if (!s.ok()) continue;
        detail = "finished the interrupted activation of " + pending.ToString();
      } else {
        detail = "interrupted switch to " + pending.ToString() + "; back on " +
                 live.ToString();
      }
    } else if (link != want) {
      detail = "current pointed at '" + link + "'; set to '" + want + "'";
    } else {
      continue;
    }
    Status s =
        want.empty() ? Status::Ok() : SwitchCurrentLink(AppDir(app), want);
    if (want.empty()) ::unlink((AppDir(app) + "/current").c_str());
    if (!s.ok()) {
      spdlog::error("{}: recovery cannot set current: {}", app, s.message());
      continue;
    }
    ledger_
        ->AppendEvent(app, EventKind::kRecovered, live, kDaemonActor, detail)
        .IgnoreError();
    spdlog::warn("{}: recovered: {}", app, detail);
  }
}

}  // namespace relsupd
