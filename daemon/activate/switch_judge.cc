#include "daemon/activate/switch_judge.h"

#include <algorithm>

namespace relsupd {

Verdict Judge(const ReleaseGroup& group, int base, int64_t now) {
  Verdict v;
  int64_t newest = -1;
  for (const Instance* i : group.Instances()) {
    v.crashes += i->restarts();
    if (!i->exits().empty() && i->exits().back().time_ms > newest) {
      newest = i->exits().back().time_ms;
      v.process = i->name();
      v.why = i->name() + " exited: " + i->exits().back().Describe();
    }
  }
  v.crashes -= base;
  for (const Instance* i : group.Instances())
    if (i->state() == InstanceState::kFailed) {
      if (v.why.empty()) {
        v.why = i->name() + " failed";
        v.process = i->name();
      }
      v.kind = Verdict::kFailed;
      return v;
    }
  if (v.crashes >= kCrashesWhileActivating) {
    v.kind = Verdict::kCrashLoop;
    return v;
  }
  if (group.Instances().empty()) {
    // Nothing to wait for when every type of the release is at scale 0
    // (instances are made at once for the others).
    bool none = true;
    for (const auto& [type, n] : group.Effective(group.formation())) none = none && n == 0;
    if (none) v.kind = Verdict::kReady;
    return v;
  }
  if (!group.AllReady()) return v;
  for (const Instance* i : group.Instances())
    if (i->spec().ready.kind == ReadyKind::kNone)
      v.settle_ms = std::max(v.settle_ms, kSettleMs - (now - i->started_ms()));
  if (v.settle_ms <= 0) v.kind = Verdict::kReady;
  return v;
}

std::string NotReady(const ReleaseGroup& group) {
  std::string waiting;
  for (const Instance* i : group.Instances())
    if (i->state() != InstanceState::kReady)
      waiting += (waiting.empty() ? "" : ", ") + i->name() + " " +
                 std::string(i->shown_state());
  return waiting;
}

}  // namespace relsupd
