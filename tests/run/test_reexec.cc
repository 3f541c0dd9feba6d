// `relsupd ctl daemon-reexec` end to end (docs/reexec.md §7.3): the real
// daemon, copied to a directory of the test so that its binary can be
// replaced, deleted or broken, re-executes itself while examples/hello
// serves on a daemon-held socket under a paced HTTP load. Every wait is for
// a state: the CLI returns only once the new image has answered.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "cli/client.h"
#include "daemon/protocol/methods.h"
#include "tests/run/hello_stage.h"
#include "tests/run/run_fixture.h"

namespace relsupd::run_test {
namespace {

namespace fs = std::filesystem;

ino_t InodeOf(const std::string& path) {
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

// relsupd and relsupd-core copied to a directory of the test (two copies
// of the core, so that each replacement is a new file, as a package
// upgrade's rename is).
struct Binaries {
  support::TempDir dir{"relsupd-bin"};
  std::string relsupd = dir.Path("relsupd");
  std::string core = dir.Path("relsupd-core");
  std::string copies[2] = {dir.Path("core-a"), dir.Path("core-b")};
  int next = 0;
  Binaries() {
    const std::string built = fs::path(support::RelsupdBin()).parent_path().string();
    fs::copy_file(support::RelsupdBin(), relsupd);
    for (const std::string& c : copies) fs::copy_file(built + "/relsupd-core", c);
    Replace();
  }
  // Renames a new file over relsupd-core; returns its inode.
  ino_t Replace() {
    const std::string fresh = core + ".new";
    fs::remove(fresh);
    fs::create_hard_link(copies[next++ % 2], fresh);
    fs::rename(fresh, core);
    return InodeOf(core);
  }
};

// GET /version on `port` every 5 ms on a thread, counting answers and
// failures, until it is destroyed.
class Load {
 public:
  explicit Load(int port)
      : thread_([this, port] {
          while (!stop_) {
            (Get(port, "/version").empty() ? failed : served)++;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          }
        }) {}
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::atomic<int> served{0}, failed{0};

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A daemon serving hello v1 with two ready web instances, run from copied
// binaries.
struct ReexecStage {
  Binaries bin;
  HelloStage h;
  explicit ReexecStage(std::vector<std::string> env = {}, const std::string& config = "")
      : h({}, std::move(env), FastConfig(config), bin.relsupd) {
    h.Release();
    h.stage.CtlOk({"activate", "shop", "v1"});
    WaitPs(h.stage, [](const Json& p) { return AllIn(p, "web", "ready", 2); });
  }
  Stage& s() { return h.stage; }
  pid_t DaemonPid() { return support::Call(s().socket(), rpc::method::kDaemonInfo)["pid"]; }
  e2e::ProcResult Reexec(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"daemon-reexec"};
    args.insert(args.end(), extra.begin(), extra.end());
    return s().Ctl(args);
  }
  std::vector<Json> ReexecEvents() {
    std::vector<Json> out;
    for (const Json& e : s().CtlJson({"history"}))
      if (e["kind"] == "reexec") out.push_back(e);
    return out;
  }
};

TEST_CASE("daemon-reexec: 10 re-execs under HTTP load fail no request and keep every pid") {
  ReexecStage r;
  const pid_t daemon = r.s().daemon().pid();
  // One crash before, so that a carried restart count shows.
  const Json before_kill = Ps(r.s());
  const pid_t web1 = Row(before_kill, "web.1")["pid"];
  REQUIRE(::kill(web1, SIGKILL) == 0);
  Json ps = WaitPs(r.s(), [&](const Json& p) {
    return Row(p, "web.1")["restarts"] == 1 && AllIn(p, "web", "ready", 2);
  });
  const std::set<pid_t> pids = Pids(ps);
  Load load(r.h.port);
  int fds_after_first = 0;
  for (int i = 0; i < 10; ++i) {
    const ino_t fresh = r.bin.Replace();
    e2e::ProcResult out = r.Reexec();
    INFO(out.err);
    REQUIRE(out.exit_code() == 0);
    CHECK_THAT(out.out, Catch::Contains("-> ") && Catch::Contains("2 instances"));
    CHECK(r.DaemonPid() == daemon);
    CHECK(InodeOf("/proc/" + std::to_string(daemon) + "/exe") == fresh);
    Json now = Ps(r.s());
    CHECK(Pids(now) == pids);
    CHECK(Row(now, "web.1")["restarts"] == 1);
    CHECK(AllIn(now, "web", "ready", 2));
    // No fd crosses that the next exec would carry again (a leak grows
    // with every re-exec).
    if (i == 0) fds_after_first = support::OpenFdCount(daemon);
  }
  // (Waited for: a connection of ours may still be closing.)
  CHECK(support::WaitUntil([&] { return support::OpenFdCount(daemon) <= fds_after_first; },
                           5'000, 20));
  // The load ran through every window.
  const int at_end = load.served;
  CHECK(support::WaitUntil([&] { return load.served > at_end + 10; }, 10'000, 10));
  load.Stop();
  CHECK(load.failed == 0);
  CHECK(load.served > 50);
  CHECK(r.ReexecEvents().size() == 10);
  CHECK(r.ReexecEvents().back()["actor"] == "root");
  // An adopted instance killed after the re-execs is restarted as before.
  const pid_t web2 = Row(Ps(r.s()), "web.2")["pid"];
  REQUIRE(::kill(web2, SIGKILL) == 0);
  WaitPs(r.s(), [&](const Json& p) {
    return Row(p, "web.2")["restarts"] == 1 && Row(p, "web.2")["pid"] != web2 &&
           AllIn(p, "web", "ready", 2);
  });
}

TEST_CASE("daemon-reexec: a child's output crosses the re-execs: every line once, a partial line whole") {
  Binaries bin;
  Gate go;
  go.Close();
  // 3,000 numbered lines over at least 1.5 s (a pause every 20 lines), then
  // "end"; the re-execs happen while it writes.
  constexpr int kLines = 3000;
  const std::string yaml =
      "processes:\n"
      "  counter:\n"
      "    command: sh -c 'i=0; while [ $i -lt " + std::to_string(kLines) + " ]; do i=$((i+1)); "
      "echo $i; [ $((i % 20)) = 0 ] && sleep 0.01; done; echo end; sleep 3600'\n"
      "    ready: none\n"
      "  part:\n"
      "    command: sh -c 'printf part-; while [ ! -e " + go.path + " ]; do sleep 0.01; done; "
      "echo rest; sleep 3600'\n"
      "    ready: none\n";
  Stage stage(FastConfig("log_rate_limit: 10000000\n"), {}, "shop", {}, bin.relsupd);
  DeployYaml(stage, yaml);
  const auto counter_lines = [&] {
    std::vector<std::string> out;
    for (const Json& rec : LogRecords(stage))
      if (rec["process"] == "counter.1") out.push_back(rec["text"]);
    return out;
  };
  REQUIRE(support::WaitUntil([&] { return counter_lines().size() > 100; }, 10'000, 20));
  const size_t before = counter_lines().size();
  for (int i = 0; i < 3; ++i) {
    e2e::ProcResult out = stage.Ctl({"daemon-reexec"});
    INFO(out.err);
    REQUIRE(out.exit_code() == 0);
  }
  go.Open();
  REQUIRE(WaitLog(stage, "part-rest"));
  REQUIRE(WaitLog(stage, "end", 60'000));
  // Lines written across the re-execs are part of the check.
  CHECK(before < static_cast<size_t>(kLines));
  const std::vector<std::string> lines = counter_lines();
  REQUIRE(lines.size() == static_cast<size_t>(kLines) + 1);
  for (int i = 0; i < kLines; ++i)
    if (lines[static_cast<size_t>(i)] != std::to_string(i + 1))
      FAIL("line " << i + 1 << " of counter.1 is '" << lines[static_cast<size_t>(i)] << "'");
  CHECK(lines.back() == "end");
  int parts = 0;
  for (const Json& rec : LogRecords(stage)) {
    if (rec["process"] != "part.1") continue;
    ++parts;
    CHECK(rec["text"] == "part-rest");
  }
  CHECK(parts == 1);
}

TEST_CASE("daemon-reexec: logs -f and events -f follow on across a re-exec, each line once") {
  Binaries bin;
  WritableDir marks;
  const std::string mark = marks.path + "/poke";
  Stage stage(FastConfig(), {}, "shop", {}, bin.relsupd);
  DeployProcfile(stage, "quiet: echo started; n=0; while :; do if [ -e " + mark +
                            " ]; then rm -f " + mark +
                            "; n=$((n+1)); echo poked-$n; fi; sleep 0.05; done\n");
  REQUIRE(WaitLog(stage, "started"));
  auto poke = [&] {
    std::ofstream out(mark);
    REQUIRE(out);
  };
  Follower logs(stage, {"logs", "shop", "-f", "-n", "1"});
  Follower events(stage, {"events", "-f", "-n", "0"});
  REQUIRE(logs.WaitOut("started"));
  poke();
  REQUIRE(logs.WaitOut("poked-1"));
  e2e::ProcResult out = stage.Ctl({"daemon-reexec"});
  INFO(out.err);
  REQUIRE(out.exit_code() == 0);
  // The parked follows were answered at the freeze; they ask the new image.
  poke();
  REQUIRE(logs.WaitOut("poked-2"));
  stage.CtlOk({"restart", "shop"});
  REQUIRE(events.WaitOut(" shop v1 quiet.1 ready"));
  CHECK(logs.running());
  CHECK(events.running());
  const std::string text = logs.out();
  CHECK(text.find("poked-1") == text.rfind("poked-1"));
  CHECK(text.find("poked-2") == text.rfind("poked-2"));
}

TEST_CASE("daemon-reexec: a failed type stays failed, and nothing restarts it") {
  Binaries bin;
  Stage stage(FastConfig("", 2), {}, "shop", {}, bin.relsupd);
  Gate crash;
  crash.Close();
  // `bad` fails only after v1 is live: a type failing during the
  // activation fails the switch instead.
  DeployYaml(stage, "processes:\n"
                    "  web:\n    command: sleep 3600\n    ready: none\n"
                    "  bad:\n    command: sh -c 'while [ ! -e " + crash.path +
                        " ]; do sleep 0.02; done; exit 1'\n    ready: none\n");
  crash.Open();
  WaitPs(stage, [](const Json& p) { return AllIn(p, "bad", "failed", 1); });
  const Json before = Ps(stage);
  const std::string failed_events = stage.CtlOk({"history", "shop"});
  e2e::ProcResult out = stage.Ctl({"daemon-reexec"});
  INFO(out.err);
  REQUIRE(out.exit_code() == 0);
  const Json after = Ps(stage);
  CHECK(Row(after, "bad.1")["state"] == "failed");
  CHECK(Row(after, "bad.1")["restarts"] == Row(before, "bad.1")["restarts"]);
  CHECK(Row(after, "web.1")["pid"] == Row(before, "web.1")["pid"]);
  // For a second, `bad` is polled: it stays failed.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until)
    REQUIRE(Row(Ps(stage), "bad.1")["state"] == "failed");
  CHECK(stage.CtlOk({"history", "shop"}) == failed_events);
}

TEST_CASE("daemon-reexec: a binary that cannot run is refused and the daemon keeps serving") {
  ReexecStage r;
  const pid_t daemon = r.s().daemon().pid();
  const std::set<pid_t> pids = Pids(Ps(r.s()));
  const auto refused = [&](const std::string& why) {
    e2e::ProcResult out = r.Reexec();
    INFO(out.out << out.err);
    CHECK(out.exit_code() == 1);
    CHECK_THAT(out.err, Catch::Contains(why));
    CHECK(r.DaemonPid() == daemon);
    CHECK(Pids(Ps(r.s())) == pids);
    CHECK(r.h.Version() == "v1\n");
  };
  const std::string saved = r.bin.dir.Path("saved");
  fs::rename(r.bin.core, saved);
  refused(r.bin.core + "': No such file or directory");
  fs::copy_file(saved, r.bin.core);
  ::chmod(r.bin.core.c_str(), 0644);
  refused("no execute bit set");
  // An ELF for another machine (e_machine 183: aarch64).
  {
    fs::remove(r.bin.core);
    fs::copy_file(saved, r.bin.core);
    std::fstream f(r.bin.core, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(18);
    const char aarch64[2] = {static_cast<char>(183), 0};
    f.write(aarch64, 2);
  }
  refused("aarch64");
  // A binary that fails its probe (here: exits 127 at once, as a missing
  // library makes ld.so do): ELF checks pass, the probe does not.
  fs::remove(r.bin.core);
  fs::copy_file("/bin/false", r.bin.core);
  refused("did not answer the reexec probe");
  CHECK(r.ReexecEvents().empty());
  fs::remove(r.bin.core);
  fs::rename(saved, r.bin.core);
  e2e::ProcResult ok = r.Reexec();
  INFO(ok.err);
  CHECK(ok.exit_code() == 0);
  CHECK(r.ReexecEvents().size() == 1);
}

TEST_CASE("daemon-reexec: refused while a switch is in progress, then done") {
  ReexecStage r;
  Gate ready;
  ready.Close();
  r.h.Release({"HELLO_READY_FILE=" + ready.path});
  r.s().CtlOk({"activate", "shop", "v2", "--no-wait"});
  WaitPs(r.s(), [](const Json& p) {
    for (const Json& row : p)
      if (row["release"] == "v2") return true;
    return false;
  });
  e2e::ProcResult out = r.Reexec();
  CHECK(out.exit_code() == 1);
  CHECK_THAT(out.err, Catch::Contains("shop v1 -> v2"));
  ready.Open();
  WaitPs(r.s(), [](const Json& p) {
    for (const Json& row : p)
      if (row["release"] != "v2") return false;
    return AllIn(p, "web", "ready", 2);
  });
  // --wait rides over the end of the switch's last phase.
  e2e::ProcResult done = r.Reexec({"--wait", "30s"});
  INFO(done.err);
  CHECK(done.exit_code() == 0);
  CHECK(r.h.Version() == "v2\n");
}

TEST_CASE("daemon-reexec: an import in flight is waited for with the control socket open, then refused as busy") {
  Gate gate;  // open: the stage's own import goes through
  ReexecStage r({"RELSUPD_FAILPOINT=import-gate", "RELSUPD_FAILPOINT_GATE=" + gate.path});
  const pid_t daemon = r.DaemonPid();
  gate.Close();
  ::unlink((gate.path + ".reached").c_str());
  const std::string file = r.s().Artifact(
      "second.tar.gz", {release_test::File("relsupd.yaml", "processes:\n  web: {command: sleep 1000}\n")});
  // An import held in its worker thread until the gate opens.
  const int null = support::OpenDevNull();
  const pid_t import = support::Spawn(
      {support::RelsupdBin(), "ctl", "--socket", r.s().socket(), "build", "import", "shop", file},
      support::ChildEnv(), null, null, null);
  ::close(null);
  bool reaped = false;
  struct Reaper {  // stopped by pid, whatever the test's outcome
    pid_t pid;
    bool* reaped;
    ~Reaper() {
      if (*reaped) return;
      ::kill(pid, SIGKILL);
      support::ExitStatus ignored;
      support::WaitPid(pid, 10'000, &ignored);
    }
  } reaper{import, &reaped};
  REQUIRE(support::WaitUntil([&] { return support::Exists(gate.path + ".reached"); }));
  // A re-exec waits for it with the socket open (frozen, every client
  // would wait with it), and after 2 s is refused, the import still held.
  std::atomic<bool> done{false};
  e2e::ProcResult refused;
  std::thread reexec([&] {
    refused = r.Reexec();
    done = true;
  });
  const bool waiting = support::WaitUntil([&] {
    return r.s().daemon().Log().find("Re-exec waits up to 2 s for 1 requests") != std::string::npos;
  });
  const int info = r.s().Ctl({"info"}).exit_code();
  const bool answered_while_waiting = !done;
  reexec.join();
  INFO(r.s().daemon().Log());
  CHECK(waiting);
  CHECK(info == 0);
  CHECK(answered_while_waiting);
  INFO(refused.err);
  CHECK(refused.exit_code() == 1);
  CHECK_THAT(refused.err, Catch::Contains("1 requests (imports, verifies) still run"));
  support::ExitStatus st;
  CHECK_FALSE(support::WaitPid(import, 0, &st));  // still held
  gate.Open();
  REQUIRE(support::WaitPid(import, 30'000, &st));
  reaped = true;
  CHECK(st.Exited(0));
  // Nothing running now: the re-exec goes through.
  e2e::ProcResult ok = r.Reexec();
  INFO(ok.err);
  CHECK(ok.exit_code() == 0);
  CHECK(r.DaemonPid() == daemon);
}

TEST_CASE("daemon-reexec: when the new image cannot read the handover, the old binary takes the apps back") {
  ReexecStage r({"RELSUPD_FAILPOINT=handover-unreadable"});
  const pid_t daemon = r.s().daemon().pid();
  const Json before = Ps(r.s());
  Load load(r.h.port);
  e2e::ProcResult out = r.Reexec();
  INFO(out.out << out.err);
  CHECK(out.exit_code() == 1);
  CHECK_THAT(out.err, Catch::Contains("could not take over") &&
                          Catch::Contains("handover is unreadable"));
  CHECK(r.DaemonPid() == daemon);
  const Json after = Ps(r.s());
  CHECK(Pids(after) == Pids(before));
  CHECK(AllIn(after, "web", "ready", 2));
  const int at_end = load.served;
  CHECK(support::WaitUntil([&] { return load.served > at_end + 10; }, 10'000, 10));
  load.Stop();
  CHECK(load.failed == 0);
  const std::vector<Json> events = r.ReexecEvents();
  REQUIRE(events.size() == 1);
  CHECK_THAT(events[0]["detail"].get<std::string>(), Catch::Contains("again"));
  // The state came back whole: a killed instance restarts.
  const pid_t web1 = Row(after, "web.1")["pid"];
  REQUIRE(::kill(web1, SIGKILL) == 0);
  WaitPs(r.s(), [&](const Json& p) {
    return Row(p, "web.1")["restarts"] == 1 && AllIn(p, "web", "ready", 2);
  });
}

TEST_CASE("daemon-reexec: SIGUSR2 re-execs, and an idle connection is served across it") {
  ReexecStage r;
  const pid_t daemon = r.s().daemon().pid();
  const std::set<pid_t> pids = Pids(Ps(r.s()));
  support::RawConn idle(r.s().socket());
  const ino_t fresh = r.bin.Replace();
  r.s().daemon().Signal(SIGUSR2);
  REQUIRE(support::WaitUntil([&] { return r.ReexecEvents().size() == 1; }, 20'000, 20));
  CHECK(r.ReexecEvents()[0]["actor"] == "SIGUSR2");
  CHECK(r.DaemonPid() == daemon);
  CHECK(InodeOf("/proc/" + std::to_string(daemon) + "/exe") == fresh);
  CHECK(Pids(Ps(r.s())) == pids);
  // Idle at the exec: the stand-in took it, handed it back, and the new
  // image answers on it (its own history holds the re-exec).
  const Json answer = idle.Exchange(
      R"({"jsonrpc":"2.0","id":7,"method":"history","params":{}})");
  REQUIRE(answer.contains("result"));
  int reexecs = 0;
  for (const Json& e : answer["result"]) reexecs += e["kind"] == "reexec";
  CHECK(reexecs == 1);
}

TEST_CASE("daemon-reexec: a re-exec interrupted by a crash is recorded at the next cold start") {
  ReexecStage r({"RELSUPD_FAILPOINT=reexec-after-pending"});
  r.s().daemon().Signal(SIGUSR2);
  CHECK(r.s().daemon().Wait(10'000).Exited(137));
  r.s().Restart();
  std::vector<Json> events = r.ReexecEvents();
  REQUIRE(events.size() == 1);
  CHECK_THAT(events[0]["detail"].get<std::string>(), Catch::Contains("interrupted"));
  CHECK_FALSE(fs::exists(r.s().state() + "/reexec.pending"));
}

}  // namespace
}  // namespace relsupd::run_test

namespace relsupd::run_test {
namespace {

TEST_CASE("daemon-reexec: refused while a one-off runs, done with --kill-one-offs") {
  ReexecStage r;
  int devnull = support::OpenDevNull();
  int sink = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t cli = support::Spawn({support::RelsupdBin(), "ctl", "--socket", r.s().socket(),
                                    "run", "shop", "--", "sleep", "1000"},
                                   support::ChildEnv(), devnull, sink, 2);
  ::close(devnull);
  ::close(sink);
  REQUIRE(cli > 0);
  const auto one_off = [&] {
    return Row(r.s().CtlJson({"ps", "shop", "--all"}), "run.1").is_object();
  };
  REQUIRE(support::WaitUntil(one_off, 20'000, 50));
  e2e::ProcResult refused = r.Reexec();
  CHECK(refused.exit_code() == 1);
  CHECK_THAT(refused.err, Catch::Contains("1 one-off process is running") &&
                              Catch::Contains("--kill-one-offs"));
  e2e::ProcResult done = r.Reexec({"--kill-one-offs"});
  INFO(done.err);
  CHECK(done.exit_code() == 0);
  // The one-off's client saw its process killed, and ended.
  e2e::ExitStatus st;
  const bool ended = support::WaitPid(cli, 20'000, &st);
  if (!ended) {
    ::kill(cli, SIGKILL);
    support::WaitPid(cli, 10'000, &st);
  }
  CHECK(ended);
  CHECK_FALSE(st.Exited(0));
  CHECK_FALSE(one_off());
}

}  // namespace
}  // namespace relsupd::run_test

namespace relsupd::run_test {
namespace {

// Calls `method` on a fresh connection every `pause` on a thread, counting
// answers and keeping every error, until it is destroyed.
class Poller {
 public:
  Poller(const std::string& socket, std::string method, Json params, std::chrono::milliseconds pause)
      : thread_([=, this] {
          while (!stop_) {
            auto client = Client::Connect(socket);
            Result<Json> r = client.ok() ? client->Call(method, params) : client.status();
            std::lock_guard lock(mu_);
            if (r.ok()) ++answers_;
            else errors_.push_back(r.status().message());
            std::this_thread::sleep_for(pause);
          }
        }) {}
  ~Poller() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t answers() {
    std::lock_guard lock(mu_);
    return answers_;
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  size_t answers_ = 0;
  std::vector<std::string> errors_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The daemon's children named relsupd-standin, zombies too.
int Standins(pid_t daemon) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.find("(relsupd-standin)") == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 2, "%c %d", &state, &ppid) == 2 && ppid == daemon) ++n;
  }
  return n;
}

TEST_CASE("daemon-reexec: a stand-in answers ps in the window, every other request waits for the new image, and the stand-in is reaped") {
  // The new image sleeps 1 s before it reads the record.
  ReexecStage r({"RELSUPD_FAILPOINT=reexec-slow-adoption"});
  const pid_t daemon = r.s().daemon().pid();
  const std::string exe = "/proc/" + std::to_string(daemon) + "/exe";
  const std::set<pid_t> pids = Pids(Ps(r.s()));
  const ino_t fresh = r.bin.Replace();
  auto cli = std::async(std::launch::async, [&] { return r.Reexec(); });
  // Past the exec, in the new image's sleep: the stand-in answers ps.
  REQUIRE(support::WaitUntil([&] { return InodeOf(exe) == fresh && Standins(daemon) == 1; },
                             20'000, 2));
  // From here to past the end of the window, no call fails. (Started
  // earlier, a call read by the old image just before its freeze may be
  // dropped unanswered, as the issue allows: that is not the stand-in's.)
  Poller poller(r.s().socket(), rpc::method::kPs, {{"app", "shop"}}, std::chrono::milliseconds(2));
  CHECK(Pids(support::Call(r.s().socket(), rpc::method::kPs, {{"app", "shop"}})) == pids);
  // history is handed back unread: the new image answers it, its re-exec
  // event included.
  const Json events = support::Call(r.s().socket(), rpc::method::kHistory);
  int reexecs = 0;
  for (const Json& e : events) reexecs += e["kind"] == "reexec";
  CHECK(reexecs == 1);
  e2e::ProcResult done = cli.get();
  INFO(done.err);
  CHECK(done.exit_code() == 0);
  poller.Stop();
  CHECK(poller.errors().empty());
  CHECK(poller.answers() > 0);
  CHECK(Pids(Ps(r.s())) == pids);
  CHECK(support::WaitUntil([&] { return Standins(daemon) == 0; }, 20'000, 20));
  // A second re-exec forks a new stand-in, and reaps it too.
  REQUIRE(r.Reexec().exit_code() == 0);
  CHECK(support::WaitUntil([&] { return Standins(daemon) == 0; }, 20'000, 20));
}

}  // namespace
}  // namespace relsupd::run_test
