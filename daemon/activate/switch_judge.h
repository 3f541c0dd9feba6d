#pragma once
// The readiness judge of a switch: whether a group it waits for (the new
// release's, or the one gone back to) is ready, still starting, failed or
// crash-looping. Pure: reads the group's instances and the time given.

#include <cstdint>
#include <string>

#include "daemon/supervise/supervisor.h"

namespace relsupd {

// Exits of new instances while a switch waits for them to be ready that
// count as a crash loop.
constexpr int kCrashesWhileActivating = 3;
// An instance with `ready: none` is ready once spawned; a switch commits
// only when it has also stayed up this long, so a release whose process
// exits at once is rolled back instead of declared live.
constexpr int64_t kSettleMs = 1000;

// How a group of a switch stands: still waiting, ready (after
// `settle_ms`), or not ready, and why.
struct Verdict {
  enum Kind { kWait, kReady, kFailed, kCrashLoop } kind = kWait;
  std::string why;         // kFailed, kCrashLoop: "web.1 exited: exit 127"
  std::string process;     // the instance that exited last ("web.1")
  int crashes = 0;         // exits counted
  int64_t settle_ms = 0;   // kWait: check again after this long
};

// Judges `group`: a failed instance, `kCrashesWhileActivating` exits
// beyond `base` restarts, every instance ready and (with `ready: none`)
// up for kSettleMs.
Verdict Judge(const ReleaseGroup& group, int base, int64_t now);

// "web.1 starting, web.2 backoff": the instances of `group` not ready.
std::string NotReady(const ReleaseGroup& group);

}  // namespace relsupd
