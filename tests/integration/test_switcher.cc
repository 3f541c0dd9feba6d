// The release switch in-process: the Switcher's decisions (ordering,
// rollback on a crash loop or at the deadline, one switch per app at a
// time, the atomic `current` link, recovery of an interrupted switch) on a
// real uv loop, a real Ledger on a temp SQLite file, real slots made by the
// real ReleaseService, the real RunService/Supervisor/Switcher wired as
// daemon/main.cc wires them, and real children (examples/hello, serving on
// the app's daemon-held loopback socket and saying READY on the notify
// socket). The e2e suite (tests/run/) keeps one case per user-visible path.
//
// The test thread runs the loop (RunStage::RunUntil polls a predicate with
// a deadline); helper threads only read files or GET the app's socket. Each
// RunStage owns its loop and every part above, stops every child it started
// (gracefully in Stop, by SIGKILL when destroyed without it, as a crash of
// the daemon would) and closes the loop.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/release_id.h"
#include "daemon/base/users.h"
#include "daemon/base/uv_handle.h"
#include "daemon/ledger/ledger.h"
#include "daemon/run/run_service.h"
#include "daemon/store/release_service.h"
#include "daemon/supervise/leftovers.h"
#include "daemon/supervise/notify_socket.h"
#include "tests/support/fs.h"
#include "tests/support/proc.h"
#include "tests/support/sockets.h"
#include "tests/support/tar.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait.h"

namespace relsupd {
namespace {

namespace fs = std::filesystem;
using support::File;

const Actor kRoot{0, "root"};

// examples/hello's process, as the e2e suite runs it.
const char kHelloYaml[] =
    "processes:\n"
    "  web: {command: ./bin/hello, scale: 2, sockets: [http], ready: notify,\n"
    "        stop_timeout: 5s}\n";

// What a RunStage hands to the next in a daemon-reexec in one process.
struct StageHandover {
  RunSnapshot run;
  NotifySnapshot notify;
};

// The run stage of one daemon on `state`: ledger, release service, notify
// socket, RunService (its Supervisor and Switcher), started as
// daemon/main.cc starts them (Recover, then BringUp). Restarts after 20 ms,
// 3 crashes allowed in 30 s, as the e2e suite's FastConfig.
class RunStage {
 public:
  // With `adopt`: started as the new image of a daemon-reexec starts, the
  // notify socket and the run stage taken over (no Recover, no BringUp).
  explicit RunStage(const std::string& state, const StageHandover* adopt = nullptr)
      : state_(state) {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, tick_.get());
    auto ledger = Ledger::Open(state + "/ledger.db", RealClock());
    REQUIRE(ledger.ok());
    ledger_ = std::move(ledger).value();
    releases_ = std::make_unique<ReleaseService>(&loop_, ledger_.get(), state,
                                                 StoreLimits{});
    REQUIRE(releases_->Recover().ok());
    closer_ = std::make_unique<FdCloser>();
    SuperviseEnv env;
    env.loop = &loop_;
    env.clock = &RealClock();
    auto id = SupervisorId(state);
    REQUIRE(id.ok());
    env.supervisor_id = *id;
    env.backoff.initial_ms = 20;
    env.backoff.cap_ms = 200;
    env.backoff.max_crashes = 3;
    env.backoff.window_ms = 30'000;
    env.notify_socket = state + "/app-notify.sock";
    runs_ = std::make_unique<RunService>(std::move(env), ledger_.get(),
                                         releases_.get(), state);
    auto on_notify = [this](pid_t pid, const std::map<std::string, std::string>& f) {
      runs_->supervisor()->OnNotify(pid, f);
    };
    if (adopt != nullptr) {
      notify_ = NotifyListener::Adopt(&loop_, adopt->notify, closer_.get(), on_notify);
      runs_->Adopt(adopt->run);
      return;
    }
    auto notify =
        NotifyListener::Open(&loop_, state + "/app-notify.sock", closer_.get(), on_notify);
    REQUIRE(notify.ok());
    notify_ = std::move(notify).value();
    runs_->Recover();
    runs_->BringUp();
  }
  // Without Stop(): whatever runs is SIGKILLed, as at a crash of the
  // daemon (the ledger and the `current` link stay as they are).
  ~RunStage() {
    runs_.reset();
    notify_.reset();  // its callback calls into runs_
    // The exit watches of children killed just now reap them as the loop
    // runs: none is left a zombie, no pidfd stays open. After Abandon()
    // they are another stage's.
    if (!abandoned_) CHECK(RunUntil(NoChildren, 10'000));
    releases_.reset();
    ledger_.reset();
    tick_.Close();
    CloseLoop(&loop_);
    closer_.reset();
  }
  RunStage(const RunStage&) = delete;
  // The test's process has no child left, running or unreaped.
  static bool NoChildren() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 &&
           errno == ECHILD;
  }
  RunStage& operator=(const RunStage&) = delete;

  RunService& runs() { return *runs_; }
  Ledger& ledger() { return *ledger_; }

  // Runs the loop until `pred` holds (checked after each iteration, and
  // at least every 5 ms); false when `timeout_ms` passed first.
  bool RunUntil(const std::function<bool()>& pred, int timeout_ms = 20'000) {
    const int64_t deadline = support::NowMs() + timeout_ms;
    uv_timer_start(
        tick_.get(), [](uv_timer_t*) {}, 5, 5);
    bool ok = pred();
    while (!ok && support::NowMs() < deadline) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = pred();
    }
    uv_timer_stop(tick_.get());
    return ok;
  }

  // The old image's side of a daemon-reexec: what crosses, then the run
  // stage and the notify socket let go of every process and fd, as the
  // exec would.
  StageHandover Export() const { return {runs_->Export(), notify_->Export()}; }
  void Abandon() {
    runs_->Abandon();
    notify_->Abandon();
    abandoned_ = true;
  }

  // The daemon's SIGTERM: switches end, every instance stops gracefully.
  void Stop() {
    auto done = std::make_shared<bool>(false);  // may outlive the call
    runs_->Shutdown([done] { *done = true; });
    CHECK(RunUntil([&] { return *done; }, 30'000));  // also from destructors
  }

  // Creates `app` as `app create` would with `edit` applied: a dynamic uid
  // of its own under root (e2e's default), else the test's user.
  void CreateApp(const std::string& app,
                 const std::function<void(AppSpec&)>& edit = nullptr) {
    AppSpec spec;
    spec.name = app;
    if (::geteuid() == 0) {
      spec.dynamic_user = true;
      spec.uid = spec.gid = 70'000 + next_uid_++;
    } else {
      spec.user = UserName(::geteuid());
    }
    if (edit) edit(spec);
    REQUIRE(ledger_->CreateApp(spec, kRoot).ok());
  }

  // Imports a tar of `entries` for `app`; the build id.
  std::string Import(const std::string& app,
                     const std::vector<support::Entry>& entries) {
    const std::string path =
        state_ + "/artifact-" + std::to_string(next_artifact_++) + ".tar";
    support::WriteArchive(path, entries, support::Filter::kNone);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    // Shared: a callback after a failed wait finds it alive.
    auto out = std::make_shared<std::optional<Result<ImportedBuild>>>();
    releases_->ImportBuild(app, Fd(fd), kRoot,
                           [out](Result<ImportedBuild> r) { out->emplace(r); });
    REQUIRE(RunUntil([&] { return out->has_value(); }));
    INFO((*out)->status().message());
    REQUIRE((*out)->ok());
    return (**out)->build.id();
  }

  // `release create APP --build BUILD --set K=V...`; the release number.
  int64_t Release(const std::string& app, const std::string& build,
                  const ReleaseConfig& set = {}) {
    // Shared: a callback after a failed wait finds it alive.
    auto out = std::make_shared<std::optional<Result<CreatedRelease>>>();
    ReleaseService::ConfigChange change;
    change.set = set;
    releases_->CreateRelease(app, build, change, kRoot,
                             [out](Result<CreatedRelease> r) { out->emplace(r); });
    REQUIRE(RunUntil([&] { return out->has_value(); }));
    INFO((*out)->status().message());
    REQUIRE((*out)->ok());
    return (**out)->release.number;
  }

  // A switch begun with Begin(); `done` is set when it ends.
  struct Pending {
    std::optional<Status> refused;  // `started` got an error
    int64_t id = 0;
    std::optional<Status> done;
  };
  std::shared_ptr<Pending> Begin(const std::string& app, int64_t release,
                                 const std::string& kind = "activate",
                                 std::optional<Strategy> strategy = {}) {
    auto p = std::make_shared<Pending>();
    runs_->Activate(
        ActivateRequest{app, release, kind, strategy, kRoot},
        [p](Result<int64_t> id) {
          if (id.ok())
            p->id = *id;
          else
            p->refused = id.status();
        },
        [p](Status s) { p->done = s; });
    return p;
  }
  // activate (or rollback, with release 0 to the previous) and wait for the
  // outcome, as `ctl activate` without --no-wait.
  Status Switch(const std::string& app, int64_t release,
                const std::string& kind = "activate",
                std::optional<Strategy> strategy = {}) {
    auto p = Begin(app, release, kind, strategy);
    if (p->refused) return *p->refused;
    REQUIRE(RunUntil([&] { return p->done.has_value(); }, 60'000));
    return *p->done;
  }

  std::vector<PsRow> Ps(const std::string& app) {
    auto rows = runs_->Ps(app);
    REQUIRE(rows.ok());
    return *rows;
  }
  // Every row of `app` is of release `number`, in state `state`, and there
  // are `n`.
  bool AllIn(const std::string& app, int64_t number, const std::string& state,
             size_t n) {
    auto rows = Ps(app);
    if (rows.size() != n) return false;
    for (const PsRow& r : rows)
      if (r.release != ReleaseId(number).ToString() || r.state != state)
        return false;
    return true;
  }
  // The rows of `app`'s release `number` in state `state`.
  size_t CountIn(const std::string& app, int64_t number,
                 const std::string& state) {
    size_t n = 0;
    for (const PsRow& r : Ps(app))
      n += r.release == ReleaseId(number).ToString() && r.state == state;
    return n;
  }
  std::set<pid_t> Pids(const std::string& app, int64_t number) {
    std::set<pid_t> out;
    for (const PsRow& r : Ps(app))
      if (r.release == ReleaseId(number).ToString() && r.pid > 0)
        out.insert(r.pid);
    return out;
  }
  int64_t Active(const std::string& app) {
    auto act = ledger_->ActivationOf(app);
    REQUIRE(act.ok());
    return act->active;
  }
  std::vector<Event> History(const std::string& app) {
    auto h = ledger_->History(app, 1000);
    REQUIRE(h.ok());
    return *h;
  }
  size_t CountEvents(const std::string& app, const std::string& kind) {
    size_t n = 0;
    for (const Event& e : History(app)) n += e.kind == kind;
    return n;
  }
  std::string Link(const std::string& app) {
    return fs::read_symlink(state_ + "/apps/" + app + "/current").string();
  }

 private:
  std::string state_;
  uv_loop_t loop_;
  UvHandle<uv_timer_t> tick_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<ReleaseService> releases_;
  std::unique_ptr<FdCloser> closer_;
  std::unique_ptr<RunService> runs_;
  std::unique_ptr<NotifyListener> notify_;
  int next_uid_ = 123;
  int next_artifact_ = 1;
  bool abandoned_ = false;
};

// App "shop" serving examples/hello on a free loopback port (a daemon-held
// socket), with its build imported: the e2e suite's HelloStage.
struct HelloStage {
  support::TempDir tmp{"relsupd-switcher"};
  int port = support::FreePort();
  std::optional<RunStage> stage;
  std::string build;

  explicit HelloStage(const std::function<void(AppSpec&)>& edit = nullptr) {
    stage.emplace(tmp.path());
    stage->CreateApp("shop", [&](AppSpec& a) {
      a.sockets = {{"http", "tcp://127.0.0.1:" + std::to_string(port)}};
      if (edit) edit(a);
    });
    build = stage->Import(
        "shop",
        {File("relsupd.yaml", kHelloYaml),
         File("bin/hello", support::ReadFileOrEmpty(RELSUPD_HELLO_BIN), 0755)});
  }
  ~HelloStage() {
    if (stage) stage->Stop();
  }
  RunStage& s() { return *stage; }
  int64_t Release(const ReleaseConfig& set = {}) {
    return stage->Release("shop", build, set);
  }
  // Makes v1 and v2 (with `v2_config`) and activates v1; v1's pids.
  std::set<pid_t> StartV1(const ReleaseConfig& v2_config) {
    Release();
    Release(v2_config);
    REQUIRE(stage->Switch("shop", 1).ok());
    std::set<pid_t> pids = stage->Pids("shop", 1);
    REQUIRE(pids.size() == 2);
    return pids;
  }
  std::string Version() { return support::HttpGet(port, "/version"); }
  // The daemon dies (every child SIGKILLed) and starts again on the same
  // state dir.
  void Crash() {
    stage.reset();
    stage.emplace(tmp.path());
  }
  // A daemon-reexec in one process: the run stage exports what runs, lets
  // go of it and is destroyed; a new one on the same state dir, with a
  // loop of its own, takes it over.
  void Reexec() {
    const StageHandover handover = stage->Export();
    stage->Abandon();
    stage.reset();
    stage.emplace(tmp.path(), &handover);
  }
};

TEST_CASE(
    "activate: a release whose web process exits at once is rolled back and v1 "
    "keeps serving") {
  HelloStage h;
  const std::set<pid_t> v1 = h.StartV1({{"HELLO_FAIL_AT_START", "1"}});
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, served{0};
  std::thread client([&] {
    while (!stop) (h.Version() == "v1\n" ? served : failed)++;
  });
  Status s = h.s().Switch("shop", 2);
  stop = true;
  client.join();
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("rolled back to v1"));
  CHECK_THAT(s.message(), Catch::Contains("exit 1"));
  CHECK(failed == 0);
  CHECK(served > 0);
  CHECK(h.Version() == "v1\n");
  CHECK(h.s().Active("shop") == 1);
  CHECK(h.s().Link("shop") == "releases/v1");
  bool event = false;
  for (const Event& e : h.s().History("shop"))
    event = event || (e.kind == "auto-rolled-back" && e.release == "v1" &&
                      e.detail.find("exit 1") != std::string::npos);
  CHECK(event);
  for (const PsRow& p : h.s().Ps("shop")) CHECK(p.release == "v1");
  // Start-first: v1 was never stopped.
  CHECK(h.s().Pids("shop", 1) == v1);
}

TEST_CASE(
    "activate: a release that never gets ready is rolled back at the "
    "deadline") {
  HelloStage h([](AppSpec& a) { a.activation_deadline_ms = 2'000; });
  h.StartV1({{"HELLO_NEVER_READY", "1"}});
  int64_t t0 = support::NowMs();
  Status s = h.s().Switch("shop", 2);
  int64_t took = support::NowMs() - t0;
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("not ready within 2s"));
  CHECK(took >= 1900);
  CHECK(h.Version() == "v1\n");
  CHECK(h.s().Active("shop") == 1);
  CHECK(h.s().Link("shop") == "releases/v1");
  CHECK(h.s().CountEvents("shop", "auto-rolled-back") == 1);
}

TEST_CASE(
    "activate: a second switch of the same app is refused while one runs, "
    "other apps are not") {
  // The switch to v2 never ends by itself within the test (v2 never gets
  // ready and the deadline is far): every check below sees it running.
  HelloStage h([](AppSpec& a) { a.activation_deadline_ms = 600'000; });
  h.StartV1({{"HELLO_NEVER_READY", "1"}});
  auto pending = h.s().Begin("shop", 2);
  REQUIRE_FALSE(pending->refused);
  auto r = h.s().Begin("shop", 0, "rollback");
  REQUIRE(r->refused);
  CHECK(r->refused->code() == StatusCode::kBusy);
  CHECK_THAT(r->refused->message(), Catch::Contains("in progress"));
  CHECK_THAT(r->refused->message(), Catch::Contains("v2"));
  // Scale, stop, start and restart wait for the switch too.
  RunService& runs = h.s().runs();
  // Shared: a call that was not refused reports later, after this scope.
  auto refused = std::make_shared<std::vector<Status>>();
  refused->push_back(runs.Scale("shop", {{"web", 1}}, kRoot).status());
  runs.Stop("shop", kRoot, [refused](Status st) { refused->push_back(st); });
  runs.Start("shop", kRoot, RunService::WaitReady::kYes,
             [refused](Status st) { refused->push_back(st); });
  runs.Restart("shop", "", kRoot,
               [refused](Status st) { refused->push_back(st); });
  REQUIRE(refused->size() == 4);
  for (const Status& st : *refused) {
    CHECK_FALSE(st.ok());
    CHECK_THAT(st.message(), Catch::Contains("in progress"));
  }
  // Another app switches meanwhile.
  h.s().CreateApp("other");
  std::string id =
      h.s().Import("other", {File("Procfile", "web: sleep 1000\n")});
  CHECK(h.s().Release("other", id) == 1);
  Status other = h.s().Switch("other", 1);
  INFO(other.message());
  CHECK(other.ok());
  const SwitchInfo* sw = runs.CurrentSwitch("shop");
  REQUIRE(sw != nullptr);
  CHECK(sw->to == 2);
  CHECK_FALSE(pending->done);
}

TEST_CASE(
    "activate: a reader of current/ never misses a file during 100 switches") {
  support::TempDir tmp{"relsupd-switcher"};
  RunStage stage(tmp.path());
  stage.CreateApp("shop");
  std::string yaml =
      "processes:\n  web:\n    command: sleep 1000\n    ready: {exec: "
      "\"true\"}\n";
  std::string id = stage.Import(
      "shop", {File("relsupd.yaml", yaml), File("page.html", "hi")});
  stage.Release("shop", id);
  stage.Release("shop", id, {{"X", "2"}});
  REQUIRE(stage.Switch("shop", 1).ok());
  std::string path = tmp.path() + "/apps/shop/current/page.html";
  std::atomic<bool> stop{false};
  std::atomic<int> misses{0}, reads{0};
  std::thread reader([&] {
    while (!stop) {
      if (::access(path.c_str(), R_OK) != 0) ++misses;
      ++reads;
    }
  });
  int failures = 0;
  for (int i = 0; i < 100; ++i)
    failures += !stage.Switch("shop", i % 2 == 0 ? 2 : 1).ok();
  stop = true;
  reader.join();
  CHECK(failures == 0);
  CHECK(misses == 0);
  CHECK(reads > 1000);
  stage.Stop();
}

TEST_CASE(
    "activate: a crash at each step of a switch recovers to exactly one live "
    "release") {
  // Where the daemon dies: before the link switch (`activating` recorded,
  // as Switcher::Prepare records it, the link unchanged), or in a phase of
  // the switch after it (the link names v2; every child is SIGKILLed).
  struct Step {
    std::string name;
    Strategy strategy;
    std::optional<SwitchPhase> phase;  // none: before the link switch
  };
  for (const Step& step :
       {Step{"before-switch", Strategy::kStartFirst, std::nullopt},
        Step{"before-switch", Strategy::kStopFirst, std::nullopt},
        Step{"after-switch", Strategy::kStartFirst, SwitchPhase::kStarting},
        Step{"after-switch", Strategy::kStopFirst, SwitchPhase::kStoppingOld},
        Step{"after-start-new", Strategy::kStartFirst,
             SwitchPhase::kCommitting},
        Step{"after-stop-old", Strategy::kStopFirst, SwitchPhase::kStarting}}) {
    INFO(step.name << " " << StrategyName(step.strategy));
    HelloStage h;
    std::set<pid_t> seen = h.StartV1({{"GREETING", "two"}});
    if (!step.phase) {
      REQUIRE(h.s()
                  .ledger()
                  .AppendEvent("shop", EventKind::kActivating, ReleaseId(2),
                               kRoot,
                               std::string("from v1, ") +
                                   std::string(StrategyName(step.strategy)))
                  .ok());
    } else {
      auto pending = h.s().Begin("shop", 2, "activate", step.strategy);
      REQUIRE_FALSE(pending->refused);
      REQUIRE(h.s().RunUntil([&] {
        for (pid_t p : h.s().Pids("shop", 2)) seen.insert(p);
        const SwitchInfo* sw = h.s().runs().CurrentSwitch("shop");
        return sw != nullptr && sw->phase == *step.phase;
      }));
      CHECK(h.s().Link("shop") == "releases/v2");
    }
    h.Crash();
    CHECK(support::WaitGone(seen));
    std::string active = ReleaseId(h.s().Active("shop")).ToString();
    CHECK(active == "v1");  // an interrupted switch goes back
    CHECK(h.s().Link("shop") == "releases/" + active);
    CHECK(h.s().RunUntil([&] { return h.s().AllIn("shop", 1, "ready", 2); }));
    CHECK(h.Version() == active + "\n");
    CHECK(h.s().CountEvents("shop", "recovered") == 1);
  }
}

// A file the test creates when v2 may say READY (HELLO_READY_FILE).
struct Gate {
  support::TempDir dir{"relsupd-gate"};
  std::string path = dir.path() + "/ready";
  void Open() { dir.WriteFile("ready", ""); }
};

TEST_CASE(
    "switcher: start-first stops the old release only once every new instance "
    "is ready") {
  Gate gate;
  HelloStage h;
  const std::set<pid_t> v1 = h.StartV1({{"HELLO_READY_FILE", gate.path}});
  auto pending = h.s().Begin("shop", 2, "activate", Strategy::kStartFirst);
  REQUIRE_FALSE(pending->refused);
  // v2 runs beside v1, waiting for its gate; v1 serves meanwhile.
  REQUIRE(h.s().RunUntil([&] { return h.s().Pids("shop", 2).size() == 2; }));
  const SwitchInfo* sw = h.s().runs().CurrentSwitch("shop");
  REQUIRE(sw != nullptr);
  CHECK(sw->phase == SwitchPhase::kStarting);
  CHECK(h.s().Link("shop") == "releases/v2");
  CHECK(h.s().Pids("shop", 1) == v1);
  for (pid_t p : v1) CHECK(support::Alive(p));
  CHECK(h.Version() == "v1\n");
  CHECK(h.s().CountEvents("shop", "activated") == 1);
  // Every check of the loop until the end: v1 runs while a v2 instance is
  // not ready.
  bool early_stop = false;
  gate.Open();
  REQUIRE(h.s().RunUntil([&] {
    if (!pending->done && h.s().CountIn("shop", 2, "ready") < 2 &&
        h.s().Pids("shop", 1) != v1)
      early_stop = true;
    return pending->done.has_value();
  }));
  CHECK(early_stop == false);
  CHECK(pending->done->ok());
  CHECK(support::WaitGone(v1));
  CHECK(h.s().AllIn("shop", 2, "ready", 2));
  CHECK(h.s().Active("shop") == 2);
  CHECK(h.s().CountEvents("shop", "activated") == 2);
  CHECK(h.Version() == "v2\n");
}

TEST_CASE(
    "switcher: stop-first starts the new release only once the old one "
    "stopped") {
  HelloStage h;
  const std::set<pid_t> v1 = h.StartV1({{"GREETING", "two"}});
  auto pending = h.s().Begin("shop", 2, "activate", Strategy::kStopFirst);
  REQUIRE_FALSE(pending->refused);
  bool overlap = false, stopping_seen = false;
  REQUIRE(h.s().RunUntil([&] {
    const SwitchInfo* sw = h.s().runs().CurrentSwitch("shop");
    stopping_seen = stopping_seen ||
                    (sw != nullptr && sw->phase == SwitchPhase::kStoppingOld);
    if (!h.s().Pids("shop", 2).empty())
      for (pid_t p : v1) overlap = overlap || support::Alive(p);
    return pending->done.has_value();
  }));
  CHECK(stopping_seen);
  CHECK_FALSE(overlap);
  CHECK(pending->done->ok());
  CHECK(h.s().AllIn("shop", 2, "ready", 2));
  CHECK(h.s().Active("shop") == 2);
  CHECK(h.s().Link("shop") == "releases/v2");
  CHECK(h.Version() == "v2\n");
}

TEST_CASE(
    "switcher: with auto_rollback off a release not ready by the deadline is "
    "kept, with the warning") {
  HelloStage h([](AppSpec& a) {
    a.activation_deadline_ms = 1'000;
    a.auto_rollback = false;
  });
  const std::set<pid_t> v1 = h.StartV1({{"HELLO_NEVER_READY", "1"}});
  Status s = h.s().Switch("shop", 2);
  INFO(s.message());
  CHECK(s.ok());
  CHECK(h.s().Active("shop") == 2);
  CHECK(h.s().Link("shop") == "releases/v2");
  CHECK(support::WaitGone(v1));
  const SwitchOutcome* last = h.s().runs().LastSwitch("shop");
  REQUIRE(last != nullptr);
  CHECK(last->ok);
  CHECK(last->live == 2);
  CHECK_THAT(last->message, Catch::Contains("not ready within 1s"));
  const Event e = h.s().History("shop").back();
  CHECK(e.kind == "activated");
  CHECK(e.release == "v2");
  CHECK_THAT(e.detail, Catch::Contains("not ready (auto_rollback off)"));
  CHECK(h.s().CountEvents("shop", "auto-rolled-back") == 0);
}


TEST_CASE(
    "activate: a failed first activation names the release once, and "
    "activating the live release is no switch") {
  HelloStage h;
  h.Release();
  h.Release({{"HELLO_FAIL_AT_START", "1"}});
  Status s = h.s().Switch("shop", 2);
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::StartsWith("first activation failed: v2 "));
  CHECK(s.message().find("v2", 40) == std::string::npos);  // named once
  CHECK(h.s().CountEvents("shop", "activation-failed") == 1);

  REQUIRE(h.s().Switch("shop", 1).ok());
  const size_t events = h.s().History("shop").size();
  s = h.s().Switch("shop", 1);
  CHECK(s.ok());
  const SwitchOutcome* last = h.s().runs().LastSwitch("shop");
  REQUIRE(last != nullptr);
  CHECK(last->ok);
  CHECK(last->live == 1);
  CHECK(last->note == "v1 of shop is already live; nothing to do");
  CHECK(h.s().History("shop").size() == events);  // nothing recorded
  CHECK(h.s().runs().CurrentSwitch("shop") == nullptr);
}

TEST_CASE(
    "daemon-reexec in one process: the new run stage keeps the processes, the held socket "
    "and the last switch, and serves throughout") {
  HelloStage h;
  const std::set<pid_t> v1 = h.StartV1({{"HELLO_FAIL_AT_START", "1"}});
  REQUIRE_FALSE(h.s().Switch("shop", 2).ok());  // rolled back: an outcome to carry
  const SwitchOutcome before = *h.s().runs().LastSwitch("shop");
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, served{0};
  std::thread client([&] {
    while (!stop) (h.Version() == "v1\n" ? served : failed)++;
  });
  h.Reexec();
  // The apps serve on through the exec window: the daemon is not in their
  // data path, and the held socket was adopted, never bound again.
  const int at_reexec = served;
  CHECK(h.s().RunUntil([&] { return served > at_reexec + 20; }));
  stop = true;
  client.join();
  CHECK(failed == 0);
  CHECK(h.s().Pids("shop", 1) == v1);
  CHECK(h.s().RunUntil([&] { return h.s().AllIn("shop", 1, "ready", 2); }));
  const SwitchOutcome* after = h.s().runs().LastSwitch("shop");
  REQUIRE(after != nullptr);
  CHECK(*after == before);
  CHECK(h.s().runs().Export().next_switch_id > before.id);
  // The new stage watches the adopted processes: one killed is restarted,
  // on the adopted socket.
  REQUIRE(::kill(*v1.begin(), SIGKILL) == 0);
  CHECK(h.s().RunUntil([&] {
    std::set<pid_t> now = h.s().Pids("shop", 1);
    return now.size() == 2 && now.count(*v1.begin()) == 0 && h.s().AllIn("shop", 1, "ready", 2);
  }));
  CHECK(h.Version() == "v1\n");
}

TEST_CASE("daemon-reexec: a switch in progress refuses it, naming the app and the releases") {
  HelloStage h([](AppSpec& a) { a.activation_deadline_ms = 600'000; });
  h.StartV1({{"HELLO_NEVER_READY", "1"}});
  CHECK(h.s().runs().RefuseReexec(false).ok());
  auto pending = h.s().Begin("shop", 2);
  REQUIRE_FALSE(pending->refused);
  Status busy = h.s().runs().RefuseReexec(false);
  CHECK(busy.code() == StatusCode::kBusy);
  CHECK_THAT(busy.message(), Catch::Contains("shop v1 -> v2"));
  CHECK_THAT(busy.message(), Catch::Contains("retry"));
}

}  // namespace
}  // namespace relsupd
