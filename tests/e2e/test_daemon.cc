// E2E: the daemon's life cycle. One daemon per state dir, sd_notify
// (READY, STATUS, WATCHDOG, STOPPING, RELOADING) and SIGHUP reloads.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/e2e/harness.h"

namespace relsupd::e2e {
namespace {

bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// A valid request of about `bytes` bytes (daemon.info ignores its params).
std::string PaddedInfoRequest(size_t bytes, int id = 1) {
  std::string head = "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) +
                     ",\"method\":\"daemon.info\",\"params\":{\"pad\":\"";
  std::string tail = "\"}}";
  return head + std::string(bytes - head.size() - tail.size(), 'x') + tail;
}

// Sends `request` on a fresh connection and returns the reply line.
std::string Ask(const std::string& socket, const std::string& request) {
  RawConn c(socket);
  REQUIRE(c.Send(request + "\n"));
  auto line = c.ReadLine();
  REQUIRE(line);
  return *line;
}

bool AnyHasLine(const std::vector<std::string>& msgs, std::string_view line) {
  for (const auto& m : msgs)
    if (HasLine(m, line)) return true;
  return false;
}

}  // namespace

TEST_CASE(
    "e2e daemon: a second daemon on the same state dir exits, naming "
    "the lock, and the first keeps serving",
    "[e2e][daemon]") {
  TempDir dir;
  DaemonProcess first(dir);
  CtlOk(first.socket(), {"app", "create", "shop"});

  // Same state dir and same socket: it must fail before it touches the
  // first daemon's socket.
  ProcResult r = RunRefusedDaemon(
      {"--state-dir", first.state_dir(), "--socket", first.socket()}, 3'000);
  INFO(r.Describe());
  CHECK(r.status.signal == 0);
  CHECK_THAT(r.err, Catch::Contains("in use"));
  CHECK_THAT(r.err, Catch::Contains("pid " + std::to_string(first.pid())));

  // Another socket path: refused as well, and that socket is not made.
  ProcResult r2 = RunRefusedDaemon(
      {"--state-dir", first.state_dir(), "--socket", dir.Path("second.sock")},
      3'000);
  INFO(r2.Describe());
  CHECK_THAT(r2.err, Catch::Contains("in use"));
  CHECK_FALSE(Exists(dir.Path("second.sock")));

  Json info = Call(first.socket(), "daemon.info");
  CHECK(info["pid"] == first.pid());
  CHECK(CtlJson(first.socket(), {"app", "list"}).size() == 1);
  CtlOk(first.socket(), {"app", "create", "cart"});
  CHECK(CtlJson(first.socket(), {"app", "list"}).size() == 2);
  CHECK(first.Terminate().Exited(0));
}

TEST_CASE(
    "e2e daemon: sd_notify READY with STATUS, WATCHDOG=1 while "
    "running, STOPPING on SIGTERM",
    "[e2e][daemon][notify]") {
  TempDir dir;
  NotifySocket notify(dir.Path("notify.sock"));
  DaemonProcess d(
      dir, {.env = {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=200000"},
            .wait_ready = false});
  std::vector<std::string> seen;
  auto ready = notify.WaitFor("READY=1", 10'000, &seen);
  INFO("daemon log:\n" << d.Log());
  REQUIRE(ready);
  auto status = Field(*ready, "STATUS");
  REQUIRE(status);
  CHECK_FALSE(status->empty());
  CHECK(Field(*ready, "MAINPID") == std::to_string(d.pid()));
  // READY=1 means ready: the control socket answers without any waiting.
  CHECK(Call(d.socket(), "daemon.info")["pid"] == d.pid());

  // WatchdogSec=200ms: pings must come well inside every 200 ms.
  int64_t last = NowMs();
  for (int i = 0; i < 3; ++i) {
    auto ping = notify.WaitFor("WATCHDOG=1", 1'000);
    REQUIRE(ping);
    const int64_t now = NowMs();
    CHECK(now - last < 200);
    last = now;
  }

  d.Signal(SIGTERM);
  seen.clear();
  auto stopping = notify.WaitFor("STOPPING=1", 5'000, &seen);
  REQUIRE(stopping);
  ExitStatus st = d.Wait(5'000);
  INFO(st.ToString());
  CHECK(st.Exited(0));
  // No READY=1 between the stop request and the end.
  CHECK_FALSE(AnyHasLine(seen, "READY=1"));
  // Its socket file goes with it.
  CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(d.socket())));
}

TEST_CASE("e2e daemon: a notify socket apps cannot reach is named at start-up", "[e2e][daemon]") {
  if (::geteuid() != 0) {
    WARN("not root: the warning is for a daemon that runs apps as their users");
    return;
  }
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  const std::string closed = dir.Path("closed");
  REQUIRE(::mkdir(closed.c_str(), 0700) == 0);
  const std::string open = dir.Path("open");
  REQUIRE(::mkdir(open.c_str(), 0755) == 0);
  {
    DaemonProcess d(dir, {.state_dir = dir.Path("state"), .socket = closed + "/relsupd.sock"});
    CHECK_THAT(d.Log(), Catch::Contains("Notify socket " + closed + "/app-notify.sock: '" +
                                        closed + "' (mode 0700) cannot be searched by others"));
  }
  if (dir.path().rfind("/tmp/", 0) == 0) {
    // Where every directory above is searchable, nothing is said.
    DaemonProcess d(dir, {.state_dir = dir.Path("state"), .socket = open + "/relsupd.sock"});
    CHECK_THAT(d.Log(), !Catch::Contains("Notify socket"));
  }
}

TEST_CASE("e2e daemon: a stopping daemon leaves a socket file that is no longer its own",
          "[e2e][daemon]") {
  TempDir dir;
  DaemonProcess d(dir);
  // Another daemon took the path meanwhile (here: a file in its place).
  REQUIRE(::unlink(d.socket().c_str()) == 0);
  std::ofstream(d.socket()) << "not ours";
  d.Signal(SIGTERM);
  ExitStatus st = d.Wait(10'000);
  INFO(st.ToString());
  CHECK(st.Exited(0));
  CHECK(std::filesystem::exists(d.socket()));
}

TEST_CASE(
    "e2e daemon: daemon-reexec says RELOADING=1 with MONOTONIC_USEC, then "
    "READY=1 with the same MAINPID, and the new image feeds the watchdog",
    "[e2e][daemon][notify]") {
  TempDir dir;
  NotifySocket notify(dir.Path("notify.sock"));
  DaemonProcess d(
      dir, {.env = {"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=2000000"},
            .wait_ready = false});
  REQUIRE(notify.WaitFor("READY=1", 10'000));
  ProcResult r = RunCtl(d.socket(), {"daemon-reexec"});
  INFO(r.Describe());
  REQUIRE(r.exit_code() == 0);
  std::vector<std::string> seen;
  auto reloading = notify.WaitFor("RELOADING=1", 5'000, &seen);
  REQUIRE(reloading);
  auto mono = Field(*reloading, "MONOTONIC_USEC");
  REQUIRE(mono.has_value());
  CHECK(std::stoll(*mono) > 0);
  auto ready = notify.WaitFor("READY=1", 5'000, &seen);
  REQUIRE(ready);
  CHECK(Field(*ready, "MAINPID") == std::to_string(d.pid()));
  CHECK(Field(*ready, "MONOTONIC_USEC").has_value());
  CHECK(notify.WaitFor("WATCHDOG=1", 3'000).has_value());
  CHECK(d.Terminate().Exited(0));
}

TEST_CASE("e2e daemon: without WATCHDOG_USEC no watchdog pings are sent",
          "[e2e][daemon][notify]") {
  TempDir dir;
  NotifySocket notify(dir.Path("notify.sock"));
  DaemonProcess d(
      dir, {.env = {"NOTIFY_SOCKET=" + notify.path()}, .wait_ready = false});
  REQUIRE(notify.WaitFor("READY=1", 10'000));
  // 300 ms is three periods of the shortest watchdog tested above.
  CHECK_FALSE(notify.WaitFor("WATCHDOG=1", 300));
}

TEST_CASE(
    "e2e daemon: SIGHUP re-reads the config, sends RELOADING=1 and "
    "READY=1, and a broken config keeps the old one",
    "[e2e][daemon][notify][reload]") {
  TempDir dir;
  NotifySocket notify(dir.Path("notify.sock"));
  const std::string cfg = dir.WriteFile(
      "relsupd.yaml", "log_level: info\nmax_request_bytes: 4096\n");
  DaemonProcess d(dir, {.config = cfg,
                        .env = {"NOTIFY_SOCKET=" + notify.path()},
                        .wait_ready = false});
  REQUIRE(notify.WaitFor("READY=1", 10'000));
  const std::string request_2k = PaddedInfoRequest(2048, 7);

  // Before: 2 KiB passes, connections are not logged (info level).
  {
    Json r = Json::parse(Ask(d.socket(), request_2k));
    INFO(r.dump());
    CHECK(r["id"] == 7);
    CHECK(r.contains("result"));
    CHECK_THAT(d.Log(), !Catch::Contains("Control connection from"));
  }

  // An open connection made before the reload is held to the new limit too.
  RawConn early(d.socket());
  dir.WriteFile("relsupd.yaml", "log_level: debug\nmax_request_bytes: 1024\n");
  d.Signal(SIGHUP);
  std::vector<std::string> seen;
  auto reloaded = notify.WaitFor("READY=1", 5'000, &seen);
  INFO("daemon log:\n" << d.Log());
  REQUIRE(reloaded);
  CHECK(AnyHasLine(seen, "RELOADING=1"));
  CHECK(!HasLine(seen.front(), "READY=1"));  // RELOADING=1 comes first
  CHECK_THAT(Field(*reloaded, "STATUS").value_or(""),
             Catch::Contains("reloaded"));

  {
    std::string reply = Ask(d.socket(), request_2k);
    CHECK_THAT(reply, Catch::Contains("max_request_bytes (1024 bytes)"));
    REQUIRE(early.Send(request_2k + "\n"));
    auto line = early.ReadLine();
    REQUIRE(line);
    CHECK_THAT(*line, Catch::Contains("max_request_bytes (1024 bytes)"));
    // Small requests still pass, and are now logged at debug level.
    CHECK(Call(d.socket(), "daemon.info")["pid"] == d.pid());
    CHECK_THAT(d.Log(), Catch::Contains("Control connection from"));
  }

  // A broken config: the reload fails, says why, and nothing changes.
  dir.WriteFile("relsupd.yaml", "log_level: debug\nmax_request_bytes: lots\n");
  d.Signal(SIGHUP);
  seen.clear();
  auto failed = notify.WaitFor("READY=1", 5'000, &seen);
  REQUIRE(failed);
  CHECK(AnyHasLine(seen, "RELOADING=1"));
  const std::string status = Field(*failed, "STATUS").value_or("");
  CHECK_THAT(status, Catch::Contains("Reload failed"));
  CHECK_THAT(status, Catch::Contains(cfg + ":2:20:"));
  CHECK_THAT(d.Log(), Catch::Contains("keeping the old config"));

  CHECK(Call(d.socket(), "daemon.info")["pid"] == d.pid());
  CHECK_THAT(Ask(d.socket(), request_2k),
             Catch::Contains("max_request_bytes (1024 bytes)"));
  CtlOk(d.socket(), {"app", "create", "after-reload"});

  // A deleted config file: the same.
  REQUIRE(::unlink(cfg.c_str()) == 0);
  d.Signal(SIGHUP);
  seen.clear();
  auto missing = notify.WaitFor("READY=1", 5'000, &seen);
  REQUIRE(missing);
  CHECK_THAT(Field(*missing, "STATUS").value_or(""),
             Catch::Contains("Reload failed"));
  CHECK_THAT(Ask(d.socket(), request_2k),
             Catch::Contains("max_request_bytes (1024 bytes)"));
  CHECK(d.Terminate().Exited(0));
}

TEST_CASE("e2e daemon: SIGHUP re-applies socket_mode",
          "[e2e][daemon][reload]") {
  TempDir dir;
  NotifySocket notify(dir.Path("notify.sock"));
  const std::string cfg =
      dir.WriteFile("relsupd.yaml", "socket_mode: \"0600\"\n");
  DaemonProcess d(dir,
                  {.config = cfg, .env = {"NOTIFY_SOCKET=" + notify.path()}});
  REQUIRE(notify.WaitFor("READY=1", 10'000));
  struct stat st {};
  REQUIRE(::stat(d.socket().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  dir.WriteFile("relsupd.yaml", "socket_mode: \"0660\"\n");
  d.Signal(SIGHUP);
  auto reloaded = notify.WaitFor("READY=1", 5'000);
  REQUIRE(reloaded);
  REQUIRE(::stat(d.socket().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0660);
}

}  // namespace relsupd::e2e
