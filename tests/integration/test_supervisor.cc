// The Supervisor and its release groups on a real loop with real children
// (/bin/sleep): what a scale of many shows while its instances wait in the
// start queue. Every process a test starts is ended by the test.

#include <catch2/catch.hpp>

#include <uv.h>

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "daemon/base/clock.h"
#include "daemon/base/uv_handle.h"
#include "daemon/supervise/supervisor.h"
#include "tests/integration/run_loop.h"
#include "tests/support/proc.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

struct Quiet final : SupervisorListener {
  void OnInstanceChange(const ReleaseGroup&, const Instance&) override {}
  void OnInstanceFailed(const ReleaseGroup&, const Instance&, const std::string&) override {}
};

// How many of the group's instances each shown state has, and how many
// are still in the start queue.
struct Shown {
  std::map<std::string, size_t> by_state;
  size_t queued = 0;
};

Shown ShownStates(const ReleaseGroup& group) {
  Shown s;
  for (const Instance* i : group.Instances()) {
    ++s.by_state[std::string(i->shown_state())];
    if (i->start_queued()) ++s.queued;
  }
  return s;
}

TEST_CASE("instances waiting in the start queue show as starting, and as stopped once stopped") {
  support::TempDir tmp;
  uv_loop_t loop{};
  REQUIRE(uv_loop_init(&loop) == 0);
  SuperviseEnv env;
  env.loop = &loop;
  env.clock = &RealClock();
  env.supervisor_id = "test-supervisor:" + std::to_string(::getpid());
  auto run = std::make_shared<ReleaseRun>();
  run->app = "shop";
  run->number = 1;
  run->slot = tmp.path();
  ProcessSpec web;
  web.name = "web";
  web.command = "exec /bin/sleep 30";
  // More than two batches: most of them wait at least one loop turn.
  const size_t n = 2 * ReleaseGroup::kStartBatch + 3;
  web.scale = static_cast<int>(n);
  run->processes.processes = {{"web", web}};
  Quiet heard;
  std::set<pid_t> pids;
  {
    Supervisor sup(env, &heard);
    // Scaled to n with no loop turn yet: one batch spawned, the rest
    // queued, none of them shown as stopped.
    sup.Run(run, {});
    ReleaseGroup* group = sup.Active("shop");
    REQUIRE(group != nullptr);
    Shown s = ShownStates(*group);
    CHECK(group->Instances().size() == n);
    CHECK(s.queued >= n - ReleaseGroup::kStartBatch);
    CHECK(s.by_state["stopped"] == 0);
    CHECK(s.by_state["starting"] + s.by_state["running"] + s.by_state["ready"] == n);
    for (const Instance* i : group->Instances())
      if (i->start_queued()) CHECK(i->state() == InstanceState::kStopped);

    // Stopped while some still wait: those show as stopped, not starting.
    bool stopped = false;
    sup.Stop("shop", [&] { stopped = true; });
    s = ShownStates(*group);
    CHECK(s.queued == 0);
    CHECK(s.by_state["starting"] == 0);
    REQUIRE(support::RunLoopUntil(&loop, [&] { return stopped; }));
    CHECK(ShownStates(*group).by_state["stopped"] == n);

    // Started again: every one runs in the end, and none is queued then.
    group->StartAll();
    REQUIRE(support::RunLoopUntil(&loop, [&] {
      const Shown now = ShownStates(*group);
      return now.queued == 0 && now.by_state.count("ready") == 1 && now.by_state.at("ready") == n;
    }));
    for (const Instance* i : group->Instances()) pids.insert(i->pid());
    CHECK(pids.size() == n);
    stopped = false;
    sup.Stop("shop", [&] { stopped = true; });
    REQUIRE(support::RunLoopUntil(&loop, [&] { return stopped; }));
  }
  for (pid_t pid : pids) CHECK_FALSE(support::Alive(pid));
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(CloseLoop(&loop) == 0);
}

}  // namespace
}  // namespace relsupd
