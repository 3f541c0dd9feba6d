// Start-up recovery of interrupted switches (Switcher::Recover), and the
// atomic `current` link every switch goes through. Loop thread only.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "daemon/activate/switcher.h"
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
    auto act = ledger_->ActivationOf(app);
    auto last = ledger_->LastEvent(
        app, {"activating", "activated", "rolled-back", "auto-rolled-back",
              "activation-failed", "recovered"});
    if (!act.ok() || !last.ok()) continue;
    char buf[256];
    ssize_t n =
        ::readlink((AppDir(app) + "/current").c_str(), buf, sizeof(buf) - 1);
    std::string link = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    std::string want =
        act->active != 0 ? "releases/" + ReleaseName(act->active) : "";
    std::string detail;
    if (*last && (*last)->kind == "activating") {
      int64_t pending = std::strtoll((*last)->release.c_str() + 1, nullptr, 10);
      if (act->active == 0) {
        // An interrupted first activation: nothing to go back to, so it is
        // finished instead.
        want = "releases/" + ReleaseName(pending);
        Status s = ledger_->AppendEvent(
            app, "activated", ReleaseName(pending), kDaemonActor,
            "recovered after an interrupted activation");
        if (!s.ok()) continue;
        detail =
            "finished the interrupted activation of " + ReleaseName(pending);
      } else {
        detail = "interrupted switch to " + ReleaseName(pending) +
                 "; back on " + ReleaseName(act->active);
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
        ->AppendEvent(app, "recovered", want.empty() ? "" : want.substr(9),
                      kDaemonActor, detail)
        .IgnoreError();
    spdlog::warn("{}: recovered: {}", app, detail);
  }
}

}  // namespace relsupd
