// Hostile peers on the control socket and the apps' notify socket, against
// the real daemon (issue 10): passed fds whose close() blocks, messages full
// of fds, more connections than the daemon takes, clients that never read.
// After each attack: the daemon's pid and the app's pids are unchanged and
// `history --verify` passes.
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/run/run_fixture.h"
#include "tests/support/sockets.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using e2e::CtlOk;
using e2e::NowMs;
using e2e::RawConn;
using support::LingeringSocket;
using support::Pipe;
using support::SendDatagram;
using support::WaitUntil;
using release_test::Stage;

constexpr int kSoMaxFds = 253;  // SCM_MAX_FD

std::string NobodyGroup() {
  auto nobody = e2e::NobodyCredentials();
  if (!nobody) return "";
  return support::GroupNameOf(nobody->gid).value_or("");
}

// A daemon whose socket nobody may read (socket_group: nobody's group),
// with app "shop" live on v1 (two sleeps), and what must not change.
struct Target {
  Stage stage;
  std::string notify_path;
  pid_t daemon_pid;
  std::set<pid_t> app_pids;

  explicit Target(std::vector<std::string> env = {}, std::string extra = "")
      : stage(FastConfig("socket_mode: \"0666\"\nsocket_group: " + NobodyGroup() +
                         "\n" + extra),
              std::move(env)) {
    DeployProcfile(stage, "web: sleep 1000\nworker: sleep 1001\n");
    notify_path =
        std::filesystem::path(stage.socket()).parent_path().string() + "/app-notify.sock";
    daemon_pid = stage.daemon().pid();
    app_pids = Pids(Ps(stage));
    REQUIRE(app_pids.size() == 2);
  }

  // The daemon, the apps and the ledger came through.
  void CheckIntact(bool same_app_pids = true) {
    CHECK(stage.daemon().pid() == daemon_pid);
    CHECK(Alive(daemon_pid));
    if (same_app_pids) {
      CHECK(Pids(Ps(stage)) == app_pids);
      for (pid_t p : app_pids) CHECK(Alive(p));
    }
    e2e::ProcResult verify = stage.Ctl({"history", "--verify"});
    INFO(verify.Describe());
    CHECK(verify.exit_code() == 0);
  }
};

// Asks daemon.info and ps on one connection, again and again, from another
// thread, and keeps the slowest answer.
class Prober {
 public:
  Prober(const std::string& socket, std::string app)
      : thread_([this, socket, app] { Run(socket, app); }) {}
  ~Prober() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t worst_ms() const { return worst_ms_; }
  int answers() const { return answers_; }
  int failures() const { return failures_; }

 private:
  void Run(const std::string& socket, const std::string& app) {
    int64_t id = 0;
    while (!stop_) {
      try {
        RawConn conn(socket);
        while (!stop_) {
          for (const char* method : {"daemon.info", "ps"}) {
            Json req = {{"jsonrpc", "2.0"}, {"method", method}, {"id", ++id}};
            if (std::string(method) == "ps") req["params"] = {{"app", app}};
            int64_t t0 = NowMs();
            Json r = conn.Exchange(req.dump(), 5'000);
            int64_t took = NowMs() - t0;
            if (!r.contains("result")) ++failures_;
            worst_ms_ = std::max<int64_t>(worst_ms_, took);
            ++answers_;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      } catch (const std::exception&) {
        ++failures_;
      }
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> worst_ms_{0};
  std::atomic<int> answers_{0};
  std::atomic<int> failures_{0};
  std::thread thread_;
};

// `n` open fds (pipe ends), closed by the destructor.
struct ManyFds {
  std::vector<int> fds;
  explicit ManyFds(int n) {
    while (static_cast<int>(fds.size()) < n) {
      int p[2];
      REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
      fds.push_back(p[0]);
      fds.push_back(p[1]);
    }
    while (static_cast<int>(fds.size()) > n) {
      ::close(fds.back());
      fds.pop_back();
    }
  }
  ~ManyFds() {
    for (int fd : fds) ::close(fd);
  }
};

const char kInfoLine[] = R"({"jsonrpc":"2.0","method":"daemon.info","id":1})";

bool Root() { return ::geteuid() == 0; }

// Whether a thread of `pid` waits in a lingering close() (wchan).
bool ThreadLingers(pid_t pid) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream w(e.path() / "wchan");
    std::string where;
    w >> where;
    if (where == "wait_woken" || where == "sk_stream_wait_close") return true;
  }
  return false;
}

// Probes the daemon for 200 answers while its close() lingers.
void CheckAnswersWhileLingering(Target& t) {
  Prober probe(t.stage.socket(), "shop");
  CHECK(WaitUntil([&] { return probe.answers() >= 200; }, 20'000));
  probe.Stop();
  CHECK(probe.failures() == 0);
  CHECK(probe.worst_ms() < e2e::kStallMs);
  WARN("slowest daemon.info/ps while a close() lingers: " << probe.worst_ms() << " ms");
  CHECK(ThreadLingers(t.daemon_pid));  // still lingering: the test was real
}

TEST_CASE("hostile conn: a lingering TCP socket passed to the control socket "
          "does not stall the loop", "[e2e][hostile][serial]") {
  Target t;
  int base_fds = e2e::OpenFdCount(t.daemon_pid);
  LingeringSocket ls;
  {
    RawConn conn(t.stage.socket());
    // The file rides on the first byte of the request; ours is closed
    // before the newline is sent, so the daemon holds the last copy when
    // it closes the file no handler took (daemon.info takes none).
    std::string line = kInfoLine;
    REQUIRE(conn.SendWithFds(line.substr(0, 10), {ls.client}));
    ::close(ls.client);  // not the last copy: quick
    ls.client = -1;
    REQUIRE(conn.Send(line.substr(10) + "\n"));
    auto reply = conn.ReadLine();
    REQUIRE(reply);
    CHECK(Json::parse(*reply).contains("result"));
  }
  CHECK(WaitUntil([&] { return ThreadLingers(t.daemon_pid); }));
  CheckAnswersWhileLingering(t);
  ls.Release();
  CHECK(WaitUntil([&] { return e2e::OpenFdCount(t.daemon_pid) <= base_fds; }));
  t.CheckIntact();
}

TEST_CASE("hostile conn: the notify socket answers an sd_notify barrier by "
          "closing its fd", "[e2e][hostile]") {
  Target t;
  int base_fds = e2e::OpenFdCount(t.daemon_pid);
  // What sd_notify_barrier() does: BARRIER=1 with the write end of a pipe,
  // then wait for POLLHUP on the read end. Our pid is no instance's: the
  // fd must be closed all the same. Three in a row, after other messages.
  for (int round = 0; round < 3; ++round) {
    REQUIRE(SendDatagram(t.notify_path, "STATUS=before the barrier\n") == 0);
    Pipe barrier;
    REQUIRE(SendDatagram(t.notify_path, "BARRIER=1", {barrier.write_end.get()}) == 0);
    CHECK_FALSE(barrier.HungUp());  // our copy is still open
    barrier.write_end.Reset();
    CHECK(WaitUntil([&] { return barrier.HungUp(); }, 10'000));
  }
  // A datagram without fds still gets through, and fds with other keys are
  // closed the same way.
  CHECK(SendDatagram(t.notify_path, "STATUS=x\n") == 0);
  {
    Pipe other;
    REQUIRE(SendDatagram(t.notify_path, "STATUS=x\n",
                         {other.write_end.get(), other.read_end.get()}) == 0);
    other.write_end.Reset();
    CHECK(WaitUntil([&] { return other.HungUp(); }, 10'000));
  }
  CHECK(WaitUntil([&] { return e2e::OpenFdCount(t.daemon_pid) <= base_fds; }));
  // Harmless: no warning for any of it.
  std::string log = t.stage.daemon().Log();
  INFO(log);
  CHECK(log.find("BARRIER") == std::string::npos);
  CHECK(log.find("notify socket:") == std::string::npos);
  t.CheckIntact();
}

TEST_CASE("hostile conn: fds sent to the notify socket are closed off the loop",
          "[e2e][hostile][serial]") {
  Target t;
  int base_fds = e2e::OpenFdCount(t.daemon_pid);
  SECTION("a lingering TCP socket") {
    // A child sends it and exits (an exiting process never lingers), so
    // the daemon's copy is the last one, unless the daemon closed its copy
    // before the child was gone: then try again.
    // To make that likely, the loop is kept busy with a large request
    // meanwhile.
    const std::string busy = R"({"jsonrpc":"2.0","method":"daemon.info","id":")" +
                             std::string(900'000, 'x') + "\"}\n";
    std::vector<std::unique_ptr<LingeringSocket>> tried;
    for (int attempt = 0; attempt < 10 && !ThreadLingers(t.daemon_pid); ++attempt) {
      tried.push_back(std::make_unique<LingeringSocket>());
      LingeringSocket& ls = *tried.back();
      RawConn conn(t.stage.socket());
      REQUIRE(conn.Send(busy));
      pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) ::_exit(SendDatagram(t.notify_path, "STATUS=x\n", {ls.client}));
      ::close(ls.client);  // the child's copy keeps it open
      ls.client = -1;
      int st = 0;
      ::waitpid(child, &st, 0);
      REQUIRE(WIFEXITED(st));
      REQUIRE(WEXITSTATUS(st) == 0);
      // The large request is answered before the probes start.
      REQUIRE(conn.ReadLine(30'000));
      WaitUntil([&] { return ThreadLingers(t.daemon_pid); }, 500);
    }
    REQUIRE(ThreadLingers(t.daemon_pid));
    CheckAnswersWhileLingering(t);
    for (auto& ls : tried) ls->Release();
  }
  SECTION("253 fds in one message, and in four SCM_RIGHTS with credentials") {
    ManyFds many(kSoMaxFds);
    REQUIRE(SendDatagram(t.notify_path, "STATUS=x\n", many.fds) == 0);
    REQUIRE(SendDatagram(t.notify_path, "STATUS=x\n", many.fds, 4, true) == 0);
    // More than SCM_MAX_FD in one message is refused by the kernel, so 253
    // is all a receive buffer ever has to hold.
    ManyFds more(kSoMaxFds + 3);
    CHECK(SendDatagram(t.notify_path, "STATUS=x\n", more.fds, 4) == EINVAL);
  }
  CHECK(WaitUntil([&] { return e2e::OpenFdCount(t.daemon_pid) <= base_fds; }));
  CHECK(t.stage.daemon().Log().find("more control data") == std::string::npos);
  t.CheckIntact();
}

TEST_CASE("hostile conn: 253 fds in one message to the control socket",
          "[e2e][hostile]") {
  Target t;
  int base_fds = e2e::OpenFdCount(t.daemon_pid);
  ManyFds many(kSoMaxFds);
  {
    RawConn conn(t.stage.socket());
    // The fds ride on the first byte; the daemon may drop the connection
    // before the rest of the line is sent (then this send is refused with
    // EPIPE): either way, what counts is that it ends.
    conn.SendWithFds(std::string(kInfoLine) + "\n", many.fds);
    // More than kMaxPassedFds (8) may wait: the connection is dropped.
    CHECK(conn.WaitEnd() != RawConn::End::kTimeout);
  }
  CHECK(WaitUntil([&] { return e2e::OpenFdCount(t.daemon_pid) <= base_fds; }));
  // Nothing was truncated: the daemon saw all 253.
  std::string log = t.stage.daemon().Log();
  CHECK(log.find("passed 253 files") != std::string::npos);
  CHECK(log.find("more control data") == std::string::npos);
  // Eight fds with a request are within the limit; none is taken by
  // daemon.info, and all are closed after it.
  {
    ManyFds eight(8);
    RawConn conn(t.stage.socket());
    REQUIRE(conn.SendWithFds(std::string(kInfoLine) + "\n", eight.fds));
    auto line = conn.ReadLine();
    REQUIRE(line);
    CHECK(Json::parse(*line).contains("result"));
  }
  CHECK(WaitUntil([&] { return e2e::OpenFdCount(t.daemon_pid) <= base_fds; }));
  CHECK(e2e::Call(t.stage.socket(), "daemon.info")["pid"] == t.daemon_pid);
  t.CheckIntact();
}

// A child process, as `uid`:`gid`, that opens `count` connections to
// `socket` and, when `line` is given, writes it `repeat` times on each,
// never reading. It holds them until killed. Returns its pid once it has
// connected (or tried to) everything.
pid_t HoldConnections(const std::string& socket, uid_t uid, gid_t gid, int count,
                      const std::string& line = "", int repeat = 0) {
  int ready[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_IGN);
    rlimit nofile{};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    nofile.rlim_cur = nofile.rlim_max;  // past 1,024 fds
    ::setrlimit(RLIMIT_NOFILE, &nofile);
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
      ::_exit(2);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    std::vector<int> conns;
    for (int i = 0; i < count; ++i) {
      int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (s < 0) ::_exit(3);
      if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(s);
        continue;
      }
      conns.push_back(s);
    }
    for (int r = 0; r < repeat; ++r)
      for (int s : conns) {
        size_t off = 0;
        while (off < line.size()) {
          ssize_t n = ::write(s, line.data() + off, line.size() - off);
          if (n <= 0) break;  // dropped by the daemon
          off += static_cast<size_t>(n);
        }
      }
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) ::_exit(4);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char c;
  ssize_t n = ::read(ready[0], &c, 1);
  ::close(ready[0]);
  REQUIRE(n == 1);
  return pid;
}

void EndChild(pid_t pid) {
  ::kill(pid, SIGKILL);
  int st;
  ::waitpid(pid, &st, 0);
}

// The HoldConnections children of a test, ended (by pid) however it ends.
struct Holders {
  std::vector<pid_t> pids;
  void EndAll() {
    for (pid_t p : pids) EndChild(p);
    pids.clear();
  }
  ~Holders() { EndAll(); }
};

TEST_CASE("hostile conn: 1,100 read-only connections while root activates "
          "and rolls back", "[e2e][hostile]") {
  if (!Root()) {
    WARN("not root: cannot connect as other users, skipping");
    return;
  }
  auto nobody = e2e::NobodyCredentials();
  REQUIRE(nobody);
  Target t;
  // One uid with every connection it can get, then 17 more uids (without
  // any right, which counts as read-only) with 60 each.
  Holders holders;
  holders.pids.push_back(HoldConnections(t.stage.socket(), nobody->uid, nobody->gid, 100));
  for (uid_t u = 0; u < 17; ++u)
    holders.pids.push_back(HoldConnections(t.stage.socket(), 70'000 + u, 70'000, 60));
  // Refused ones were closed at accept; the daemon holds at most 960 (the
  // limit for peers without the change right) plus its own fds.
  std::string log = t.stage.daemon().Log();
  CHECK(log.find("refused a connection from uid") != std::string::npos);
  // Root still does its work: a new release, activated, then rolled back.
  std::string v2 = DeployProcfile(t.stage, "web: sleep 1002\nworker: sleep 1003\n");
  CHECK(v2 == "v2");
  CHECK(t.stage.CtlJson({"status", "shop"})["active"] == "v2");
  t.stage.CtlOk({"rollback", "shop"});
  CHECK(t.stage.CtlJson({"status", "shop"})["active"] == "v1");
  // nobody is at its own limit: refused at once, with no request read.
  e2e::ProcResult r = t.stage.Ctl({"info"}, {.as = nobody});
  CHECK(r.exit_code() != 0);
  // And told why, not "Connection reset by peer": its own limit or the
  // one of every peer without the change right, whichever it met first.
  CHECK_THAT(r.err, Catch::Contains("uid " + std::to_string(nobody->uid) +
                                    " has its most connections to relsupd open (") ||
                        Catch::Contains("connections without the change right are all taken ("));
  holders.EndAll();
  // Once they are gone, nobody gets in again.
  CHECK(WaitUntil([&] {
    return t.stage.Ctl({"info"}, {.as = nobody}).exit_code() == 0;
  }));
  t.CheckIntact(/*same_app_pids=*/false);
}

TEST_CASE("hostile conn: follows whose clients closed give their places back at once",
          "[e2e][hostile]") {
  // A uid may park 32 follows (LongPolls::kMaxWaitersPerUid). Clients that
  // open follows and close them (Ctrl-C on `logs -f`, in a loop) must not
  // keep that uid out until the parked requests' 30 s deadline.
  e2e::TempDir dir;
  e2e::DaemonProcess d(dir);
  // A follow from the newest event on: it parks until the next one.
  auto follow_now = [&] {
    const uint64_t cursor = e2e::Call(d.socket(), "events", Json::object())["cursor"];
    return R"({"jsonrpc":"2.0","id":1,"method":"events","params":{"after":)" +
           std::to_string(cursor) + R"(,"wait":true}})" + "\n";
  };
  const std::string follow = follow_now();
  auto is_busy = [](const std::optional<std::string>& line) {
    return line && Json::parse(*line).contains("error") &&
           Json::parse(*line)["error"]["message"].get<std::string>().find("already has") !=
               std::string::npos;
  };
  {
    std::vector<std::unique_ptr<RawConn>> parked;
    for (int i = 0; i < 32; ++i) {
      parked.push_back(std::make_unique<RawConn>(d.socket()));
      REQUIRE(parked.back()->Send(follow));
    }
    // They are parked once one more is refused as busy.
    REQUIRE(WaitUntil([&] {
      RawConn extra(d.socket());
      return extra.Send(follow) && is_busy(extra.ReadLine(2'000));
    }));
  }  // every follow's client closes its socket here
  // A new follow parks, with no news (which would answer the closed ones
  // too) well before the 30 s the closed ones would have waited: a
  // daemon.info sent behind it is answered first. A refused follow would
  // be answered first, with busy.
  const int64_t closed_at = NowMs();
  bool parked_again = false;
  while (!parked_again && NowMs() - closed_at < 20'000) {
    RawConn again(d.socket());
    REQUIRE(again.Send(follow_now() + R"({"jsonrpc":"2.0","id":2,"method":"daemon.info"})" +
                       "\n"));
    std::optional<std::string> line = again.ReadLine(10'000);
    REQUIRE(line);
    INFO(*line);
    parked_again = Json::parse(*line)["id"] == 2;
    if (!parked_again) CHECK(is_busy(line));
  }
  CHECK(parked_again);
  // Half-closed clients still get their answers (printf ... | nc -U).
  RawConn half(d.socket());
  REQUIRE(half.Send(follow_now()));
  half.CloseWrite();
  CtlOk(d.socket(), {"app", "create", "news-half"});
  std::optional<std::string> answer = half.ReadLine(10'000);
  REQUIRE(answer);
  CHECK(Json::parse(*answer).contains("result"));
}

int64_t RssKb(pid_t pid) {
  std::string v = StatusField(pid, "VmRSS");  // "  1234 kB"
  return std::stoll(v);
}

TEST_CASE("hostile conn: clients that never read their large replies",
          "[e2e][hostile][serial]") {
  if (!Root()) {
    WARN("not root: cannot connect as nobody, skipping");
    return;
  }
  auto nobody = e2e::NobodyCredentials();
  REQUIRE(nobody);
  Target t({}, "max_request_bytes: 8388608\n");
  // Each request echoes a 4 MiB id: 3 per connection is 12 MiB waiting,
  // under the 16 MiB per connection, and 36 connections are 432 MiB, far
  // past the daemon's 192 MiB for peers without the change right. Under
  // ASan, which does not check the RSS (below), 18 connections (216 MiB)
  // reach the cap for half the work.
#if defined(RELSUPD_SANITIZED)
  constexpr int kConnections = 18;
#else
  constexpr int kConnections = 36;
#endif
  const std::string line = R"({"jsonrpc":"2.0","method":"daemon.info","id":")" +
                           std::string(4 << 20, 'x') + "\"}\n";
  int64_t base_kb = RssKb(t.daemon_pid);
  Prober probe(t.stage.socket(), "shop");
  std::atomic<bool> done{false};
  std::atomic<int64_t> peak_kb{base_kb};
  std::thread sampler([&] {
    while (!done) {
      peak_kb = std::max<int64_t>(peak_kb, RssKb(t.daemon_pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  Holders holders;
  holders.pids.push_back(
      HoldConnections(t.stage.socket(), nobody->uid, nobody->gid, kConnections, line, 3));
  // The replies waiting reached the cap for read-only peers, and a
  // client that reads is still answered.
  CHECK(WaitUntil([&] {
    return t.stage.daemon().Log().find("reach the daemon's cap") != std::string::npos;
  }));
  CHECK(e2e::Call(t.stage.socket(), "daemon.info")["pid"] == t.daemon_pid);
  done = true;
  sampler.join();
  probe.Stop();
  int64_t grown_mb = (peak_kb - base_kb) / 1024;
  INFO("RSS grew by " << grown_mb << " MiB at most");
#if defined(RELSUPD_SANITIZED)
  // ASan keeps freed memory in quarantine (256 MiB) and runs ~10x slower:
  // neither the RSS nor the probes' timeouts say anything there.
  WARN("ASan build: RSS " << grown_mb << " MiB, probe failures " << probe.failures()
                          << "; not checked");
#else
  // The cap, and room for the work in hand (a 4 MiB request is parsed,
  // its reply built and serialized) and an unfinished line; measured:
  // ~240 MiB at the peak. Without the global cap: 432 MiB waiting.
  CHECK(grown_mb < 192 + 96);
  CHECK(probe.failures() == 0);
#endif
  CHECK(probe.answers() > 0);
  // Served, not fast: each 4 MiB request costs the loop its parse and
  // serialization (bounding the work per line is the dispatcher's part).
  INFO("slowest daemon.info/ps: " << probe.worst_ms() << " ms");
  holders.EndAll();
  t.CheckIntact();
}

}  // namespace
}  // namespace relsupd::run_test
