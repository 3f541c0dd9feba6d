// The Switcher's checks: starting the new group, judging it and the
// release gone back to (switch_judge.h), and the stderr lines a failure
// message quotes.
#include <algorithm>

#include "daemon/activate/switch_judge.h"
#include "daemon/activate/switcher.h"
#include "daemon/base/failpoint.h"
#include "daemon/base/release_id.h"
#include "daemon/logs/log_store.h"

namespace relsupd {
namespace {

// Lines of an instance's stderr a failure message quotes.
constexpr size_t kFailureLines = 5;

}  // namespace

void Switcher::OnCheckTimer(uv_timer_t* timer) {
  auto* sw = static_cast<Switch*>(timer->data);
  if (sw == nullptr) return;
  if (sw->info.phase == SwitchPhase::kCheckingBack) return sw->owner->CheckBack(sw);
  sw->owner->CheckNew(sw);
}

void Switcher::StartNew(Switch* sw) {
  if (sw->info.strategy == Strategy::kStopFirst) {
    Failpoint("after-stop-old");
    // The old release stopped: bind the sockets Prepare left closed.
    auto run = load_run_(sw->info.app, sw->info.to, SocketBind::kNow);
    if (!run.ok()) return Dispatch(sw, SwitchEvent::kFreshFailed, run.status());
    sw->run = *run;
  }
  auto formation = ledger_->GetFormation(sw->info.app);
  if (!formation.ok())
    return Dispatch(sw, SwitchEvent::kFreshFailed, formation.status());
  sw->fresh = supervisor_->StartBeside(sw->run, *formation);
  CheckNew(sw);
}

void Switcher::CheckNew(Switch* sw) {
  if (sw->info.phase != SwitchPhase::kStarting || !FreshGroupAlive(sw)) return;
  const std::string to = ReleaseId(sw->info.to).ToString();
  const Verdict v =
      Judge(*sw->fresh, 0, supervisor_->env()->clock->MonotonicMs());
  const std::string lines =
      v.process.empty() ? "" : LastLines(sw->info.app, sw->info.to, v.process);
  switch (v.kind) {
    case Verdict::kFailed:
      return Dispatch(sw, SwitchEvent::kFreshFailed,
                      FailedPrecondition(to + " failed: " + v.why + lines));
    case Verdict::kCrashLoop:
      return Dispatch(sw, SwitchEvent::kCrashLoop,
                      FailedPrecondition(to + " crash-looped: " + v.why + " (" +
                                         std::to_string(v.crashes) +
                                         " exits while activating)" + lines));
    case Verdict::kWait:
      return ArmSettle(sw, v.settle_ms);
    case Verdict::kReady:
      break;
  }
  Failpoint("after-start-new");
  Dispatch(sw, SwitchEvent::kFreshReady);
}

void Switcher::ArmSettle(Switch* sw, int64_t settle_ms) {
  if (settle_ms > 0)
    uv_timer_start(sw->check.get(), &Switcher::OnCheckTimer,
                   static_cast<uint64_t>(settle_ms), 0);
}

const ReleaseGroup* Switcher::BackGroup(const Switch* sw) {
  ReleaseGroup* g = supervisor_->Active(sw->info.app);
  if (g == nullptr || g->run().number != sw->info.from) return nullptr;
  return g;
}

void Switcher::CheckBack(Switch* sw) {
  if (sw->info.phase != SwitchPhase::kCheckingBack) return;
  // A first activation went back to nothing: nothing to be ready.
  if (sw->info.from == 0) return Dispatch(sw, SwitchEvent::kBackReady);
  const ReleaseGroup* g = BackGroup(sw);
  if (g == nullptr) return;  // starts once the new group stopped
  const std::string back = ReleaseId(sw->info.from).ToString();
  const Verdict v = Judge(*g, sw->back_restarts_base,
                          supervisor_->env()->clock->MonotonicMs());
  const std::string lines =
      v.process.empty() ? "" : LastLines(sw->info.app, sw->info.from, v.process);
  switch (v.kind) {
    case Verdict::kFailed:
      return Dispatch(sw, SwitchEvent::kBackNotReady,
                      FailedPrecondition(back + " is not ready: " + v.why +
                                         " (failed)" + lines));
    case Verdict::kCrashLoop:
      return Dispatch(
          sw, SwitchEvent::kBackNotReady,
          FailedPrecondition(back + " is not ready: " + v.why + " (" +
                             std::to_string(v.crashes) +
                             " exits since the switch went back, "
                             "crash-looping)" +
                             lines));
    case Verdict::kWait:
      return ArmSettle(sw, v.settle_ms);
    case Verdict::kReady:
      break;
  }
  Dispatch(sw, SwitchEvent::kBackReady);
}

std::string Switcher::LastLines(const std::string& app, int64_t release,
                                const std::string& process) {
  LogStore* logs = supervisor_->env()->logs;
  if (logs == nullptr) return "";
  // Records of other releases' instance of that name are read past: a few
  // more than needed, then those of `release`. Its stderr, or its stdout
  // when it wrote nothing there (redis, say, logs to stdout).
  const std::string id = ReleaseId(release).ToString();
  static const std::pair<const char*, const char*> kStreams[] = {{"err", "stderr"},
                                                                 {"out", "stdout"}};
  for (const auto& [stream, shown] : kStreams) {
    auto records = logs->Tail(app, LogFilter{.process = process, .stream = stream, .release = ""},
                              4 * kFailureLines);
    if (!records.ok()) return "";
    std::vector<std::string> lines;
    for (const LogRecord& r : *records)
      if (r.release == id) lines.push_back(r.text);
    if (lines.size() > kFailureLines)
      lines.erase(lines.begin(), lines.end() - static_cast<long>(kFailureLines));
    if (lines.empty()) continue;
    lines.push_back("more: relsupd ctl logs " + app + " --process " + process);
    return LastLinesNote("the last lines of " + process + " on " + shown, lines);
  }
  return "";
}

}  // namespace relsupd
