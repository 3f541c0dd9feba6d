// E2E: hostile requests on the control socket (issue 10). Whatever a peer
// sends, deep nesting, batches of heavy reads, replies too large, the
// daemon keeps its pid, answers others without a stall (kStallMs), and its
// history still verifies.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

namespace relsupd::e2e {
namespace {

std::string Nested(size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

std::string NestedObjects(size_t levels) {
  std::string s;
  s.reserve(levels * 6 + 1);
  for (size_t i = 0; i < levels; ++i) s += "{\"a\":";
  s += "1";
  s.append(levels, '}');
  return s;
}

// After an attack: the same daemon answers and its history verifies.
void CheckSurvived(const DaemonProcess& d, pid_t pid) {
  CHECK(Call(d.socket(), "daemon.info")["pid"] == pid);
  ProcResult v = RunCtl(d.socket(), {"history", "--verify"});
  CHECK(v.exit_code() == 0);
  INFO(v.Describe());
}

std::string Request(int id, std::string_view method, const Json& params) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump();
}

std::string Batch(int n, std::string_view method, const Json& params) {
  std::string b = "[";
  for (int i = 0; i < n; ++i) b += (i ? "," : "") + Request(i + 1, method, params);
  return b + "]";
}

// Creates apps e1..eN with batches of app.create on a root connection: one
// event each.
void MakeEvents(const std::string& socket, int n) {
  RawConn c(socket);
  for (int done = 0; done < n;) {
    std::string b = "[";
    for (int k = 0; k < 100 && done < n; ++k, ++done)
      b += (k ? "," : "") + Request(done, "app.create", {{"name", "e" + std::to_string(done)}});
    Json r = c.Exchange(b + "]", 30'000);
    REQUIRE(r.is_array());
    for (const Json& one : r) REQUIRE(one.contains("result"));
  }
}

// A daemon whose socket group is nobody's group: nobody may read, not change.
struct ReadOnlyStage {
  Credentials nobody{};
  TempDir dir;
  std::unique_ptr<DaemonProcess> d;
  bool Start() {
    std::string group;
    auto who = NobodyOrSkip(&group);
    if (!who) return false;
    nobody = *who;
    const std::string cfg = dir.WriteFile(
        "relsupd.yaml", "socket_mode: \"0666\"\nsocket_group: " + group +
                            "\nadmin_group: relsupd-e2e-no-such-group\n");
    d = std::make_unique<DaemonProcess>(dir, DaemonOptions{.config = cfg});
    return true;
  }
};

// A forked child that becomes `who`, connects to `socket` and sends `line`
// again and again, reading each reply whole; it writes one byte to
// `report` per reply. Stopped by the test with SIGKILL, by pid.
pid_t StartReader(const std::string& socket, Credentials who, const std::string& line,
                  int report) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid > 0) return pid;
  gid_t g = who.gid;
  if (::setgroups(1, &g) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0)
    ::_exit(10);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    ::_exit(11);
  const std::string out = line + "\n";
  static char buf[1 << 16];
  for (;;) {
    for (size_t off = 0; off < out.size();) {
      ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) ::_exit(12);
      off += static_cast<size_t>(n);
    }
    for (bool end = false; !end;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) ::_exit(13);
      end = buf[n - 1] == '\n';  // one reply at a time: it ends the data
    }
    if (::write(report, "x", 1) != 1) ::_exit(14);
  }
}

void StopChild(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // Killed by us, not ended by an error of its own (exit 10..14).
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
}

// A release of `app` with `files` small files, made with the system's tar
// and imported with the CLI: "v1".
void MakeRelease(const TempDir& dir, const std::string& socket, const std::string& app,
                 int files) {
  namespace fs = std::filesystem;
  const fs::path src = dir.Path("src");
  fs::create_directories(src / "bin");
  fs::create_directories(src / "lib");
  std::ofstream(src / "Procfile") << "web: ./bin/web\n";
  std::ofstream(src / "bin/web") << "#!/bin/sh\nexec sleep 1000\n";
  fs::permissions(src / "bin/web", fs::perms(0755));
  for (int i = 0; i < files; ++i)
    std::ofstream(src / "lib" / ("f" + std::to_string(i) + ".txt")) << "file " << i << "\n";
  const std::string tarball = dir.Path("app.tar.gz");
  ProcResult tar = RunProcess({"/usr/bin/tar", "-C", src.string(), "-czf", tarball, "."});
  REQUIRE(tar.exit_code() == 0);
  Json build = CtlJson(socket, {"build", "import", app, tarball});
  CtlOk(socket, {"release", "create", app, "--build", build["id"].get<std::string>()});
}

// `lines` log records of `app` (seq 1..lines) in its current.log, in the
// log store's own format, as if its processes had written them.
void WriteLogs(const std::string& state_dir, const std::string& app, int lines) {
  namespace fs = std::filesystem;
  const fs::path logs = fs::path(state_dir) / "logs" / app;
  fs::create_directories(logs);
  std::ofstream out(logs / "current.log", std::ios::app);
  for (int i = 1; i <= lines; ++i) {
    const std::string text =
        "line " + std::to_string(i) + " of the log, long enough to weigh a little";
    out << i << " 2026-12-03T12:00:00.000000Z v1 web.1 out - " << text.size() << ' ' << text
        << '\n';
  }
}

}  // namespace

TEST_CASE_METHOD(DaemonFixture,
                 "e2e hostile rpc: regression, a 300,000-level id no longer kills the daemon",
                 "[e2e][hostile]") {
  const pid_t pid = d.pid();
  RawConn c(d.socket());
  // The exact line that crashed 3c36d97 with SIGSEGV (stack overflow when
  // the dispatcher copied the id).
  const std::string line =
      R"({"jsonrpc":"2.0","method":"daemon.info","id":)" + Nested(300'000) + "}";
  REQUIRE(line.size() > 600'000);
  Json r = c.Exchange(line, 10'000);
  CHECK(r["error"]["code"] == -32600);
  CHECK(r["error"]["message"].get<std::string>().find("deeper than 64 levels") !=
        std::string::npos);
  CHECK(r["id"].is_null());
  // The same connection goes on.
  CHECK(c.Exchange(R"({"jsonrpc":"2.0","method":"daemon.info","id":2})")["result"]["pid"] ==
        pid);
  CheckSurvived(d, pid);
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e hostile rpc: nested params, objects and batch members each get an error",
                 "[e2e][hostile]") {
  const pid_t pid = d.pid();
  RawConn c(d.socket());
  const std::vector<std::string> attacks = {
      // Deep params.
      R"({"jsonrpc":"2.0","method":"history","id":1,"params":{"app":)" + Nested(300'000) + "}}",
      // A deep id made of objects.
      R"({"jsonrpc":"2.0","method":"daemon.info","id":)" + NestedObjects(100'000) + "}",
      // Deep inside one member of a batch.
      R"([{"jsonrpc":"2.0","method":"daemon.info","id":1},)"
      R"({"jsonrpc":"2.0","method":"daemon.info","id":2,"params":{"x":)" +
          Nested(300'000) + "}}]",
      // A deep batch of its own.
      Nested(300'000),
      // One level over the limit.
      R"({"jsonrpc":"2.0","method":"daemon.info","id":1,"params":{"x":)" + Nested(64) + "}}",
  };
  for (const std::string& attack : attacks) {
    Json r = c.Exchange(attack, 10'000);
    INFO(r.dump().substr(0, 300));
    CHECK(r["error"]["code"] == -32600);
    CHECK(r["error"]["message"].get<std::string>().find("64 levels") != std::string::npos);
    CHECK(c.Exchange(R"({"jsonrpc":"2.0","method":"daemon.info","id":9})")["result"]["pid"] ==
          pid);
  }
  // 63 levels within params still pass.
  Json ok = c.Exchange(R"({"jsonrpc":"2.0","method":"daemon.info","id":1,"params":{"x":)" +
                       Nested(62) + "}}");
  CHECK(ok["result"]["pid"] == pid);
  // A wrong-typed id is refused before it is copied.
  Json bad_id = c.Exchange(R"({"jsonrpc":"2.0","method":"daemon.info","id":[1]})");
  CHECK(bad_id["error"]["code"] == -32600);
  CheckSurvived(d, pid);
}

TEST_CASE(
    "e2e hostile rpc: a read-only peer's batches of heavy reads leave another "
    "connection's daemon.info answering without a stall",
    "[e2e][hostile][serial]") {
  ReadOnlyStage s;
  if (!s.Start()) return;
  DaemonProcess& d = *s.d;
  const pid_t pid = d.pid();
  CtlOk(d.socket(), {"app", "create", "shop"});
  // 300 files: ScanSlot hashes each with a fresh, zeroed 1 MiB buffer, so a
  // verify of thousands takes seconds on a loaded host, and the daemon waits
  // for the one running at shutdown.
  MakeRelease(s.dir, d.socket(), "shop", 300);
  MakeEvents(d.socket(), 1500);
  WriteLogs(d.state_dir(), "shop", 30'000);
  // The heavy reads are real: a full page of each.
  REQUIRE(Call(d.socket(), "history", {{"limit", 100'000}}).size() == 100);
  Json logs = Call(d.socket(), "logs", {{"app", "shop"}, {"lines", 100'000}});
  REQUIRE(logs["records"].size() == 100);
  CHECK(logs["more"] == true);
  REQUIRE(Call(d.socket(), "release.verify", {{"app", "shop"}, {"release", "v1"}})["ok"] ==
          true);

  int report[2];
  REQUIRE(::pipe2(report, O_CLOEXEC | O_NONBLOCK) == 0);
  std::vector<pid_t> readers;
  for (const std::string& line :
       {Batch(100, "history", {{"limit", 100'000}}),
        Batch(100, "logs", {{"app", "shop"}, {"lines", 100'000}}),
        Batch(100, "release.verify", {{"app", "shop"}, {"release", "v1"}}),
        Batch(50, "release.diff", {{"app", "shop"}, {"from", "v1"}, {"to", "v1"}}),
        Batch(100, "history", {{"limit", 100'000}, {"after", 0}})})
    readers.push_back(StartReader(d.socket(), s.nobody, line, report[1]));

  RawConn info(d.socket());
  int64_t replies = 0, rounds = 0, worst_us = 0;
  const int64_t start = NowMs();
  // Until every reader had several replies (they run all along), at least
  // 2 s and 100 rounds; each round trip is one check.
  while (NowMs() - start < 60'000 &&
         (replies < 20 || rounds < 100 || NowMs() - start < 2'000)) {
    auto t0 = std::chrono::steady_clock::now();
    Json r = info.Exchange(R"({"jsonrpc":"2.0","method":"daemon.info","id":1})", 5'000);
    const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - t0)
                           .count();
    worst_us = std::max(worst_us, us);
    ++rounds;
    CHECK(r["result"]["pid"] == pid);
    CHECK(us < kStallMs * 1000);
    char buf[256];
    for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) replies += n;
  }
  for (pid_t p : readers) StopChild(p);
  ::close(report[0]);
  ::close(report[1]);
  INFO("rounds " << rounds << ", reader replies " << replies << ", worst round trip "
                 << worst_us << " us");
  CHECK(replies >= 20);
  CHECK(worst_us < kStallMs * 1000);
  WARN("daemon.info under heavy read batches: " << rounds << " round trips, worst "
                                                << worst_us / 1000.0 << " ms; " << replies
                                                << " heavy batches answered meanwhile");
  CheckSurvived(d, pid);
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e hostile rpc: paging returns every event and log line exactly once",
                 "[e2e][hostile]") {
  const pid_t pid = d.pid();
  CtlOk(d.socket(), {"app", "create", "shop"});
  MakeEvents(d.socket(), 2500);
  // 2,501 events: 26 pages, followed by the CLI.
  Json all = CtlJson(d.socket(), {"history", "-n", "100000"});
  REQUIRE(all.size() == 2501);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i]["id"] == static_cast<int64_t>(i + 1));
  // The newest N across a page boundary: ids 2501-1200+1 .. 2501.
  Json newest = CtlJson(d.socket(), {"history", "-n", "1200"});
  REQUIRE(newest.size() == 1200);
  CHECK(newest.front()["id"] == 1302);
  CHECK(newest.back()["id"] == 2501);
  // Paging by hand: after the last id seen, until a page is empty.
  std::set<int64_t> seen;
  int64_t after = 0;
  for (;;) {
    Json page = Call(d.socket(), "history", {{"limit", 100'000}, {"after", after}});
    CHECK(page.size() <= 100);
    if (page.empty()) break;
    for (const Json& e : page) CHECK(seen.insert(e["id"].get<int64_t>()).second);
    after = page.back()["id"];
  }
  CHECK(seen.size() == 2501);
  // The human table: one row per event and a header.
  std::string table = CtlOk(d.socket(), {"history", "-n", "100000"});
  CHECK(std::count(table.begin(), table.end(), '\n') == 2502);

  // Logs: the last 2,500 of 5,000 lines, 25 pages back, printed in order.
  WriteLogs(d.state_dir(), "shop", 5000);
  std::string out = CtlOk(d.socket(), {"--json", "logs", "shop", "-n", "2500"});
  std::istringstream lines(out);
  int64_t expect = 2501, count = 0;
  for (std::string l; std::getline(lines, l); ++count, ++expect)
    CHECK(Json::parse(l)["seq"] == expect);
  CHECK(count == 2500);
  CheckSurvived(d, pid);
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e hostile rpc: replies over the budget get an error naming the limit",
                 "[e2e][hostile]") {
  const pid_t pid = d.pid();
  MakeEvents(d.socket(), 1500);
  // Each page of 100 events is ~40 KB; 100 of them would pass 1 MiB.
  RawConn c(d.socket());
  Json r = c.Exchange(Batch(100, "history", {{"limit", 100'000}}), 30'000);
  REQUIRE(r.is_array());
  REQUIRE(r.size() == 100);
  CHECK(r[0].contains("result"));
  CHECK(r[99]["error"]["code"] == -32008);
  CHECK(r[99]["error"]["message"].get<std::string>().find("1048576 bytes") !=
        std::string::npos);
  // Too many requests in one batch.
  Json many = c.Exchange(Batch(101, "daemon.info", Json::object()));
  CHECK(many["error"]["code"] == -32600);
  CHECK(many["error"]["message"].get<std::string>().find("at most 100") != std::string::npos);
  CHECK(c.Exchange(R"({"jsonrpc":"2.0","method":"daemon.info","id":2})")["result"]["pid"] ==
        pid);
  CheckSurvived(d, pid);
}

}  // namespace relsupd::e2e
