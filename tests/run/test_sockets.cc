// Daemon-held sockets end to end with real runtimes: a Procfile app's `web`
// type gets the app's sockets (a Node server on fd 3), start-first needs a
// held socket (a type that binds $PORT itself is refused before anything
// changes), stop-first moves a running app onto a held socket, and a held
// socket with nothing serving behind it refuses clients at once.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <thread>

#include "tests/run/run_fixture.h"

namespace relsupd::run_test {
namespace {

using release_test::File;

// A Node HTTP server answering its release ("v1\n"): on the held socket
// (fd 3) when LISTEN_FDS says there is one, else on $PORT; once listening
// it says READY=1 from a child of the instance (python3, as Node cannot
// send a datagram to a Unix socket) that stays alive. (`systemd-notify
// --ready` would do too, see the test of it below; not `--no-block`: it
// exits at once, and when it is gone before the daemon reads its datagram
// it can no longer be matched to the instance by its session, so the test
// hung in `running` now and then.) On SIGTERM it stops accepting and ends
// once its requests are answered.
const char kServerJs[] = R"js(
const http = require('http');
const { spawn } = require('child_process');
const notify = "import os, socket, time; " +
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); " +
  "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET']); time.sleep(3600)";
const server = http.createServer((req, res) => {
  res.end(process.env.RELSUPD_RELEASE + '\n');
});
const held = parseInt(process.env.LISTEN_FDS || '0', 10) > 0;
server.listen(held ? { fd: 3 } : { host: '127.0.0.1', port: Number(process.env.PORT) },
  () => { if (process.env.NOTIFY_SOCKET) spawn('python3', ['-c', notify], { stdio: 'ignore' }); });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
)js";

const char kNode[] = "/usr/bin/node";

std::vector<std::string> SocketArgs(int port) {
  return {"--socket", "http=tcp://127.0.0.1:" + std::to_string(port)};
}

// Imports a build of `procfile` and server.js; returns its id.
std::string ImportNode(Stage& stage, const std::string& procfile,
                       const std::string& yaml = "") {
  std::vector<release_test::Entry> entries = {File("Procfile", procfile),
                                              File("server.js", kServerJs)};
  if (!yaml.empty()) entries.push_back(File("relsupd.yaml", yaml));
  return stage.Import(stage.Artifact("node.tar.gz", entries))["id"].get<std::string>();
}

bool Has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}
bool HasKey(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.rfind(key + "=", 0) == 0) return true;
  return false;
}

// What a client gets from 127.0.0.1:port without sending anything. (A
// process that outlives its instance, e.g. a server under a shell that does
// not exec it, keeps the listener until it exits: kClosed, not kRefused.
// The apps here exec theirs.)
enum class Answer { kRefused, kClosed, kSilent, kData };
Answer Knock(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Answer answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    answer = errno == ECONNREFUSED ? Answer::kRefused : Answer::kData;
  } else {
    // A listener nobody accepts from leaves the connection silent: the
    // poll below runs out (a failure bound, not a margin).
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) {
      answer = Answer::kSilent;
    } else {
      char c;
      ssize_t n = ::read(fd, &c, 1);
      answer = n == 0 || (n < 0 && errno == ECONNRESET) ? Answer::kClosed
                                                        : Answer::kData;
    }
  }
  ::close(fd);
  return answer;
}

std::string Live(Stage& stage) {
  return stage.CtlJson({"status", "shop"})["active"].get<std::string>();
}

TEST_CASE("sockets: a Procfile app's web type serves on the held socket, and a start-first switch keeps serving") {
  const int port = FreePort();
  Stage stage(FastConfig(), {}, "shop", SocketArgs(port));
  std::string build = ImportNode(stage, std::string("web: ") + kNode + " server.js\n");
  stage.Create(build);
  stage.Create(build, {"--set", "GREETING=two"});
  stage.CtlOk({"activate", "shop", "v1"});
  CHECK(Get(port, "/") == "v1\n");
  pid_t pid = Row(Ps(stage), "web.1")["pid"].get<pid_t>();
  auto env = Environ(pid);
  CHECK(Has(env, "LISTEN_FDS=1"));
  CHECK(Has(env, "LISTEN_FDNAMES=http"));
  CHECK(Has(env, "LISTEN_PID=" + std::to_string(pid)));
  CHECK_FALSE(HasKey(env, "PORT"));  // relsupd never sets PORT

  // Start-first: every request of a client that keeps asking is answered.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread client([&] {
    while (!stop) (Get(port, "/").empty() ? failed : ok)++;
  });
  auto r = stage.Ctl({"activate", "shop", "v2"});
  stop = true;
  client.join();
  REQUIRE(r.exit_code() == 0);
  CHECK(failed == 0);
  CHECK(ok > 0);
  CHECK(Get(port, "/") == "v2\n");
  CHECK(Live(stage) == "v2");
}

TEST_CASE("sockets: gunicorn in a Procfile serves on the held socket it reads from LISTEN_FDS") {
  if (!std::filesystem::exists("/usr/bin/gunicorn")) {
    WARN("no /usr/bin/gunicorn: skipped");
    return;
  }
  const int port = FreePort();
  Stage stage(FastConfig(), {}, "shop", SocketArgs(port));
  const char kApp[] =
      "import os\n"
      "def app(environ, start_response):\n"
      "    body = (os.environ['RELSUPD_RELEASE'] + '\\n').encode()\n"
      "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
      "    return [body]\n";
  std::string file = stage.Artifact(
      "py.tar.gz", {File("Procfile", "web: /usr/bin/gunicorn --workers 1 app:app\n"),
                    File("app.py", kApp)});
  stage.Create(stage.Import(file)["id"].get<std::string>());
  stage.CtlOk({"activate", "shop", "v1"});
  // Content-Length, not chunked: Get reads a plain body.
  CHECK(support::WaitUntil([&] { return Get(port, "/") == "v1\n"; }, 20'000, 25));
  CHECK(Has(Environ(Row(Ps(stage), "web.1")["pid"].get<pid_t>()), "LISTEN_FDS=1"));
}

TEST_CASE("sockets: a relsupd.yaml without sockets gives them to web, and READY=1 from a child of the instance makes it ready") {
  const int port = FreePort();
  Stage stage(FastConfig(), {}, "shop", SocketArgs(port));
  // `ready: notify` with a deadline long enough that only READY=1 (never
  // the deadline) can make v1 live.
  std::string build = ImportNode(
      stage, "", std::string("processes:\n  web:\n    command: ") + kNode +
                     " server.js\n    ready: notify\n    ready_timeout: 10m\n");
  stage.Create(build);
  stage.CtlOk({"activate", "shop", "v1"});
  Json row = Row(Ps(stage), "web.1");
  CHECK(row["state"] == "ready");
  CHECK(Get(port, "/") == "v1\n");
  CHECK(Has(Environ(row["pid"].get<pid_t>()), "LISTEN_FDNAMES=http"));
}

TEST_CASE("sockets: systemd-notify --ready from a child of the instance, as the app's user, waits for its barrier and makes each instance ready") {
  const char kSystemdNotify[] = "/usr/bin/systemd-notify";
  if (::access(kSystemdNotify, X_OK) != 0) {
    WARN("no " << kSystemdNotify << ": skipped");
    return;
  }
  Stage stage(FastConfig());
  WritableDir marks;
  // The main process (the shell, which then becomes sleep) runs
  // systemd-notify as a child and leaves its exit status in marks/PID.
  // Without --no-block, systemd-notify sends READY=1 and then BARRIER=1
  // with a pipe's write end, and waits (5 s at most) for the daemon to
  // close it: it is still alive, and so matched to the instance by its
  // session, when its READY=1 is handled. `ready_timeout: 10m`: only
  // READY=1 makes an instance ready within the test's wait.
  DeployYaml(stage, std::string("processes:\n"
                                "  web:\n"
                                "    command: >-\n"
                                "      ") + kSystemdNotify + " --ready;\n"
                    "      echo $? > " + marks.path + "/$$.new;\n"
                    "      mv " + marks.path + "/$$.new " + marks.path + "/$$;\n"
                    "      exec sleep 1000\n"
                    "    ready: notify\n"
                    "    ready_timeout: 10m\n");
  // Each instance's systemd-notify said 0, once it is in the file.
  std::set<pid_t> checked;
  auto check_all = [&](const Json& ps) {
    for (pid_t pid : Pids(ps, "web")) {
      if (!checked.insert(pid).second) continue;
      INFO("web instance pid " << pid);
      CHECK(StatusField(pid, "Uid").rfind("0\t", 0) != 0);  // not root
      const std::string mark = marks.path + "/" + std::to_string(pid);
      CHECK(support::WaitUntil([&] { return std::filesystem::exists(mark); }, 20'000));
      CHECK(support::ReadFileOrEmpty(mark) == "0\n");
    }
  };
  check_all(WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); }));
  // Five instances (web.1 stays), then all five restarted: ten starts, each
  // of which lost its READY=1 now and then with --no-block on a loaded
  // machine.
  stage.CtlOk({"scale", "shop", "web=5"});
  Json ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 5); });
  check_all(ps);
  const std::set<pid_t> before = Pids(ps, "web");
  stage.CtlOk({"restart", "shop"});
  ps = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 5); });
  for (pid_t pid : Pids(ps, "web")) CHECK(before.count(pid) == 0);
  check_all(ps);
  CHECK(checked.size() == 10);
  // No "Failed to invoke barrier" (or any other complaint) in the logs.
  CHECK(Logs(stage).dump().find("Failed") == std::string::npos);
}

// A Node app that binds $PORT itself (no held socket): v1 live on it, v2
// made with the same PORT.
struct OwnPortApp {
  const int port = FreePort();
  Stage stage{FastConfig(), {}, "shop"};
  const std::string set_port = "PORT=" + std::to_string(port);
  OwnPortApp() {
    std::string build = ImportNode(stage, std::string("web: ") + kNode + " server.js\n");
    stage.Create(build, {"--set", set_port});
    stage.Create(build, {"--set", set_port});
    stage.CtlOk({"activate", "shop", "v1"});  // nothing ran before: allowed
    REQUIRE(Get(port, "/") == "v1\n");
  }
};

TEST_CASE("sockets: a scale past 1 of a type that binds PORT itself is done with a warning that comes true") {
  OwnPortApp app;
  Stage& stage = app.stage;
  auto r = stage.Ctl({"scale", "shop", "web=2"});
  INFO(r.Describe());
  REQUIRE(r.exit_code() == 0);
  CHECK(r.out.starts_with("Scaled shop: web=2\n"));
  CHECK(r.out.find("Warning: process type 'web' has " + app.set_port +
                   " and no daemon-held socket: its 2 instances") != std::string::npos);
  CHECK(r.out.find("SO_REUSEPORT") != std::string::npos);
  CHECK(r.out.find("LISTEN_FDS") != std::string::npos);
  // It is what happens: web.2 cannot listen, crashes and ends failed; web.1
  // serves on.
  WaitPs(stage, [](const Json& ps) { return Row(ps, "web.2").value("state", "") == "failed"; },
         20'000, "web.2 failed");
  CHECK(Get(app.port, "/") == "v1\n");
  // Back to 1: no warning; --json has none either.
  r = stage.Ctl({"scale", "shop", "web=1"});
  CHECK(r.exit_code() == 0);
  CHECK(r.out == "Scaled shop: web=1\n");
  Json j = stage.CtlJson({"scale", "shop", "web=1"});
  CHECK_FALSE(j.contains("warnings"));
  j = stage.CtlJson({"scale", "shop", "web=3"});
  REQUIRE(j["warnings"].is_array());
  CHECK(j["warnings"].size() == 1);
  stage.CtlOk({"scale", "shop", "web=1"});
}

TEST_CASE("sockets: a start-first switch of a type that binds PORT itself is refused before anything changes") {
  OwnPortApp app;
  Stage& stage = app.stage;
  const int port = app.port;
  const std::string& set_port = app.set_port;
  std::set<pid_t> before = Pids(Ps(stage));
  size_t events = stage.CtlJson({"history", "shop"}).size();

  auto r = stage.Ctl({"activate", "shop", "v2"});
  CHECK(r.exit_code() == 1);
  INFO(r.Describe());
  CHECK(r.err.find("process type 'web' has " + set_port) != std::string::npos);
  CHECK(r.err.find("--strategy stop-first") != std::string::npos);
  CHECK(r.err.find("--socket") != std::string::npos);
  // Nothing changed: v1 live, its processes alone, no event.
  CHECK(Live(stage) == "v1");
  CHECK(Pids(Ps(stage)) == before);
  CHECK(stage.CtlJson({"history", "shop"}).size() == events);
  CHECK(std::filesystem::read_symlink(stage.state() + "/apps/shop/current") == "releases/v1");

  // The fix it names works.
  stage.CtlOk({"activate", "shop", "v2", "--strategy", "stop-first"});
  CHECK(Get(port, "/") == "v2\n");
}

TEST_CASE("sockets: stop-first moves a running app from its own PORT onto a held socket") {
  OwnPortApp app;
  Stage& stage = app.stage;
  const int port = app.port;
  std::string spec = stage.dir().WriteFile(
      "shop.yaml", "name: shop\nsockets: {http: \"tcp://127.0.0.1:" + std::to_string(port) + "\"}\n");
  stage.CtlOk({"app", "apply", spec});

  // Start-first cannot: v1 holds the port. Refused with what to do, v1 on.
  auto r = stage.Ctl({"activate", "shop", "v2"});
  CHECK(r.exit_code() == 1);
  INFO(r.Describe());
  CHECK(r.err.find("--strategy stop-first") != std::string::npos);
  CHECK(Live(stage) == "v1");
  CHECK(Get(port, "/") == "v1\n");

  r = stage.Ctl({"activate", "shop", "v2", "--strategy", "stop-first"});
  INFO(r.Describe());
  REQUIRE(r.exit_code() == 0);
  CHECK(Get(port, "/") == "v2\n");
  CHECK(Has(Environ(Row(Ps(stage), "web.1")["pid"].get<pid_t>()), "LISTEN_FDS=1"));
}

TEST_CASE("sockets: a held socket with nothing serving refuses clients at once") {
  const int port = FreePort();
  Stage stage(FastConfig(), {}, "shop", SocketArgs(port));
  const std::string crash = stage.dir().Path("crash");
  std::string build = ImportNode(
      stage, "web: test -e " + crash + " && exit 3; exec " + kNode + " server.js\n");
  stage.Create(build);
  stage.CtlOk({"activate", "shop", "v1"});
  CHECK(Get(port, "/") == "v1\n");

  // Stopped by hand: refused, not left in a backlog.
  stage.CtlOk({"stop", "shop"});
  CHECK(Knock(port) == Answer::kRefused);
  // Started again: the socket is bound again and serves.
  stage.CtlOk({"start", "shop"});
  CHECK(support::WaitUntil([&] { return Get(port, "/") == "v1\n"; }, 20'000, 25));

  // Every instance of web failed: refused too.
  stage.dir().WriteFile("crash", "");
  ::kill(Row(Ps(stage), "web.1")["pid"].get<pid_t>(), SIGKILL);
  WaitPs(stage, [](const Json& ps) { return AllIn(ps, "web", "failed", 1); },
         20'000, "web.1 failed");
  CHECK(Knock(port) == Answer::kRefused);
}

}  // namespace
}  // namespace relsupd::run_test
