// E2E: `relsupd ctl` as an operator and a script see it: exit codes
// (0 ok, 1 refused, 2 usage, 3 unreachable), messages that name the bad
// input, idempotent apply, --json output, --help and --version.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <tuple>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/e2e/harness.h"
#include "tests/run/run_fixture.h"

namespace relsupd::e2e {
namespace {

bool SnakeCase(const std::string& key) {
  static const std::regex kSnake("^[a-z][a-z0-9]*(_[a-z0-9]+)*$");
  return std::regex_match(key, kSnake);
}

void CheckSnakeCaseKeys(const Json& object) {
  INFO(object.dump());
  REQUIRE(object.is_object());
  for (const auto& [key, value] : object.items()) {
    INFO("key: " << key);
    CHECK(SnakeCase(key));
  }
}

std::string Joined(const std::vector<std::string>& words) {
  std::string s = "relsupd";
  for (const auto& w : words) s += " " + w;
  return s;
}

// CLI11's heading of a list of subcommands, or one of the stages `relsupd
// ctl --help` lists its verbs under (cli/ctl.cc).
const std::regex kSubcommandHeading(
    "(Subcommands|SUBCOMMANDS|Build \\(.*\\)|Release \\(.*\\)|Run \\(.*\\)|Inspect|Daemon|Help|"
    "Other):");

// Runs `relsupd WORDS... --help`; returns the subcommands it lists.
std::vector<std::string> ListedSubcommands(
    const std::vector<std::string>& words, ProcResult* help) {
  std::vector<std::string> argv = {RelsupdBin()};
  argv.insert(argv.end(), words.begin(), words.end());
  argv.push_back("--help");
  ProcResult r = RunProcess(argv);
  *help = r;
  std::vector<std::string> subs;
  std::istringstream in(r.out);
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (std::regex_match(line, kSubcommandHeading)) {
      in_section = true;
      continue;
    }
    if (!in_section) continue;
    if (line.empty() || line[0] != ' ') {
      in_section = false;
      continue;
    }
    std::istringstream words_in(line);
    std::string name;
    words_in >> name;
    if (!name.empty()) subs.push_back(name);
  }
  return subs;
}

// Every subcommand path of the relsupd binary, read from the help texts,
// so a new verb is covered without editing this file. `help` receives the
// result of `--help` on each path, in the same order.
std::vector<std::vector<std::string>> AllCommands(
    std::vector<ProcResult>* help) {
  std::vector<std::vector<std::string>> all = {{}};
  for (size_t i = 0; i < all.size() && all.size() < 200; ++i) {
    help->emplace_back();
    for (const std::string& sub : ListedSubcommands(all[i], &help->back())) {
      std::vector<std::string> path = all[i];
      path.push_back(sub);
      all.push_back(path);
    }
  }
  // The walk itself must work, or the tests below would check nothing.
  for (const std::vector<std::string>& must :
       {std::vector<std::string>{"daemon"},
        {"build"},
        {"ctl"},
        {"ctl", "info"},
        {"ctl", "app", "create"},
        {"ctl", "app", "apply"},
        {"ctl", "history"}}) {
    INFO(Joined(must));
    CHECK(std::find(all.begin(), all.end(), must) != all.end());
  }
  return all;
}


// A control socket that answers as another version of the daemon would,
// for the client's side of a protocol change: each request is kept, and
// `answer` makes the response's "result" (or, holding "error", the error)
// from it. One connection at a time, on a thread of its own; the
// destructor stops it.
class ScriptedDaemon {
 public:
  ScriptedDaemon(const std::string& path, std::function<Json(const Json&)> answer)
      : answer_(std::move(answer)),
        listener_(support::OpenUnixSocket(path, SOCK_STREAM, support::UnixEnd::kBind)) {
    REQUIRE(::listen(listener_.get(), 8) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedDaemon() {
    stop_ = true;
    thread_.join();
  }
  ScriptedDaemon(const ScriptedDaemon&) = delete;
  ScriptedDaemon& operator=(const ScriptedDaemon&) = delete;

  // The requests received so far, oldest first.
  std::vector<Json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listener_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) continue;
      std::string buf;
      char chunk[4096];
      ssize_t n;
      while ((n = ::read(conn.get(), chunk, sizeof chunk)) > 0) {
        buf.append(chunk, static_cast<size_t>(n));
        for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
          const Json request = Json::parse(buf.substr(0, nl), nullptr, false);
          buf.erase(0, nl + 1);
          {
            std::lock_guard<std::mutex> lock(mu_);
            requests_.push_back(request);
          }
          Json out = answer_(request);
          Json response = {{"jsonrpc", "2.0"}, {"id", request.value("id", Json())}};
          if (out.is_object() && out.contains("error"))
            response["error"] = out["error"];
          else
            response["result"] = std::move(out);
          const std::string line = response.dump() + "\n";
          if (::send(conn.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
              static_cast<ssize_t>(line.size()))
            break;
        }
      }
    }
  }

  std::function<Json(const Json&)> answer_;
  Fd listener_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Json> requests_;
  std::thread thread_;
};

// `ps` rows of two instances as a daemon sends them without `columns`:
// web.1 with a memory limit, a status and a last exit; web.2 of a release
// being retired, not started yet.
Json PsObjects() {
  return Json::parse(R"([
    {"active": true, "app": "shop", "cpu_percent": 1.5, "cpu_seconds": 0.25,
     "exits": [{"cause": "crash", "exit": "exit 3", "time": "2026-12-05T10:00:00Z"}],
     "last_exit": "exit 3", "last_exit_at": "2026-12-05T10:00:00Z",
     "last_exit_cause": "crash", "memory_bytes": 35651584, "memory_limit_by": "cgroup",
     "memory_limit_bytes": 67108864, "pid": 4242, "process": "web.1", "release": "v2",
     "restarts": 1, "state": "ready", "status": "serving", "type": "web", "uid": 70001,
     "uptime_ms": 3723000},
    {"active": false, "app": "shop", "cpu_percent": null, "cpu_seconds": null,
     "exits": [], "last_exit": null, "memory_bytes": null, "pid": 0,
     "process": "web.2", "release": "v1", "restarts": 0, "state": "backoff",
     "type": "web", "uid": -1, "uptime_ms": 0}
  ])");
}

// The same rows as a daemon answers `columns` (the values of the objects,
// null where a key is left out).
Json PsRowsOf(const Json& columns) {
  Json rows = Json::array();
  for (const Json& object : PsObjects()) {
    Json row = Json::array();
    for (const Json& name : columns) row.push_back(object.value(name.get<std::string>(), Json()));
    rows.push_back(std::move(row));
  }
  return Json{{"columns", columns}, {"rows", rows}};
}

}  // namespace

TEST_CASE("e2e cli: ps asks for columns and prints the same table from rows, from a daemon "
          "that refuses the param (asked again without it) and from one that ignores it",
          "[e2e][cli]") {
  TempDir dir;
  // What `relsupd ctl ps` printed from these objects before `columns`.
  const std::string expected =
      "APP   PROCESS  RELEASE   STATE    PID   UID    UPTIME  MEM      CPU%  RESTARTS  "
      "LAST EXIT  STATUS\n"
      "shop  web.1    v2        ready    4242  70001  1h2m    34M/64M  1.5   1         "
      "exit 3     serving\n"
      "shop  web.2    v1 (old)  backoff  -     -      -       -        -     0         "
      "-          -\n"
      "Memory limits: cgroup memory.max\n";
  enum class Daemon { kNew, kRefuses, kIgnores };
  for (Daemon kind : {Daemon::kNew, Daemon::kRefuses, Daemon::kIgnores}) {
    INFO("daemon " << static_cast<int>(kind));
    const std::string socket = dir.Path("s" + std::to_string(static_cast<int>(kind)) + ".sock");
    ScriptedDaemon daemon(socket, [kind](const Json& request) -> Json {
      const Json& params = request["params"];
      if (!params.contains("columns") || kind == Daemon::kIgnores) return PsObjects();
      if (kind == Daemon::kRefuses)
        return {{"error", {{"code", -32602}, {"message", "unknown param 'columns'"}}}};
      return PsRowsOf(params["columns"]);
    });
    ProcResult r = RunCtl(socket, {"ps", "shop"});
    INFO(r.Describe());
    CHECK(r.status.Exited(0));
    CHECK(r.err.empty());
    CHECK(r.out == expected);
    const std::vector<Json> requests = daemon.requests();
    REQUIRE(requests.size() == (kind == Daemon::kRefuses ? 2u : 1u));
    CHECK(requests[0]["method"] == "ps");
    CHECK(requests[0]["params"]["app"] == "shop");
    CHECK(requests[0]["params"]["columns"].is_array());
    if (kind == Daemon::kRefuses) CHECK(requests[1]["params"] == Json{{"app", "shop"}});
  }
  // --json asks without columns and prints the objects as they came.
  const std::string socket = dir.Path("json.sock");
  ScriptedDaemon daemon(socket, [](const Json& request) -> Json {
    return request["params"].contains("columns") ? Json("columns asked") : PsObjects();
  });
  CHECK(Json::parse(CtlOk(socket, {"--json", "ps", "shop"})) == PsObjects());
  REQUIRE(daemon.requests().size() == 1);
  CHECK_FALSE(daemon.requests()[0]["params"].contains("columns"));
  // Any other refusal is the command's error, not asked again.
  const std::string other = dir.Path("other.sock");
  ScriptedDaemon refusing(other, [](const Json&) -> Json {
    return {{"error", {{"code", -32001}, {"message", "app 'shop' does not exist"}}}};
  });
  ProcResult r = RunCtl(other, {"ps", "shop"});
  CHECK(r.status.Exited(1));
  CHECK(r.err == "relsupd: app 'shop' does not exist\n");
  CHECK(refusing.requests().size() == 1);
}

TEST_CASE("e2e cli: status asks for the processes as rows of three columns and prints the "
          "same counts, also from a daemon that refuses the param (asked again without it)",
          "[e2e][cli]") {
  TempDir dir;
  // Two types of an app mid-switch: the objects a daemon sends without
  // columns.
  Json status = {{"app", "shop"},
                 {"active", "v2"},
                 {"previous", "v1"},
                 {"stopped", false},
                 {"switch", nullptr},
                 {"last_switch", nullptr},
                 {"processes", Json::array()}};
  for (const auto& [release, type, state] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"v2", "web", "ready"}, {"v2", "web", "starting"}, {"v2", "worker", "ready"},
           {"v1", "web", "stopping"}, {"v2", "web", "ready"}}) {
    status["processes"].push_back({{"app", "shop"}, {"release", release}, {"type", type},
                                   {"state", state}, {"pid", 7}, {"restarts", 0},
                                   {"exits", Json::array()}});
  }
  // What `relsupd ctl status shop` prints from these objects (and did
  // before columns, but for the commas).
  const std::string expected =
      "shop: active v2, previous v1\n"
      "  v1 web: 1 stopping\n"
      "  v2 web: 2 ready, 1 starting\n"
      "  v2 worker: 1 ready\n";
  for (bool refuses : {false, true}) {
    INFO("refuses " << refuses);
    const std::string socket = dir.Path(refuses ? "old.sock" : "new.sock");
    ScriptedDaemon daemon(socket, [&status, refuses](const Json& request) -> Json {
      const Json& params = request["params"];
      if (!params.contains("columns")) return status;
      if (refuses) return {{"error", {{"code", -32602}, {"message", "unknown param 'columns'"}}}};
      Json out = status;
      Json rows = Json::array();
      for (const Json& p : status["processes"]) {
        Json row = Json::array();
        for (const Json& name : params["columns"]) row.push_back(p.value(name.get<std::string>(), Json()));
        rows.push_back(row);
      }
      out["processes"] = {{"columns", params["columns"]}, {"rows", rows}};
      return out;
    });
    ProcResult r = RunCtl(socket, {"status", "shop"});
    INFO(r.Describe());
    CHECK(r.status.Exited(0));
    CHECK(r.out == expected);
    const std::vector<Json> requests = daemon.requests();
    REQUIRE(requests.size() == (refuses ? 2u : 1u));
    CHECK(requests[0]["params"]["columns"].is_array());
    if (refuses) CHECK(requests[1]["params"] == Json{{"app", "shop"}});
  }
  // --json: no columns, the objects as they came.
  const std::string socket = dir.Path("json.sock");
  ScriptedDaemon daemon(socket, [&status](const Json& request) -> Json {
    return request["params"].contains("columns") ? Json("columns asked") : status;
  });
  CHECK(Json::parse(CtlOk(socket, {"--json", "status", "shop"})) == status);
}

TEST_CASE("e2e cli: exit 3 and the socket path when no daemon listens",
          "[e2e][cli]") {
  TempDir dir;
  const std::string socket = dir.Path("nobody-listens.sock");
  for (const std::vector<std::string>& args : {std::vector<std::string>{"info"},
                                               {"app", "list"},
                                               {"app", "create", "shop"},
                                               {"history", "--verify"},
                                               {"--json", "app", "list"}}) {
    ProcResult r = RunCtl(socket, args);
    INFO(r.Describe());
    CHECK(r.status.Exited(3));
    // With --json the error is JSON on stdout, stderr empty (cli/ctl.h).
    const bool json = args[0] == "--json";
    CHECK_THAT(json ? r.out : r.err, Catch::Contains(socket));
    CHECK((json ? r.err : r.out).empty());
  }
  // A stale socket file with no listener behind it: the same.
  {
    DaemonProcess d(dir);
    d.Kill9();
    ProcResult r = RunCtl(d.socket(), {"info"});
    INFO(r.Describe());
    CHECK(r.status.Exited(3));
    CHECK_THAT(r.err, Catch::Contains(d.socket()));
  }
  // $RELSUPD_SOCKET is the default socket.
  ProcResult r = RunProcess({RelsupdBin(), "ctl", "info"},
                            {.env = {"RELSUPD_SOCKET=" + socket}});
  INFO(r.Describe());
  CHECK(r.status.Exited(3));
  CHECK_THAT(r.err, Catch::Contains(socket));
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: usage errors exit 2 and change nothing",
                 "[e2e][cli]") {
  const std::vector<std::vector<std::string>> usage_errors = {
      // (No verb prints the help and exits 0: see "ctl alone lists".)
      {"frobnicate"},                            // unknown verb
      {"app"},                                   // no app verb
      {"app", "frobnicate"},                     // unknown app verb
      {"app", "show"},                           // missing APP
      {"app", "create"},                         // missing APP
      {"app", "apply"},                          // missing FILE
      {"app", "create", "shop", "--keep", "0"},  // out of range
      {"app", "create", "shop", "--strategy", "sideways"},
      {"app", "create", "shop", "--deadline", "soon"},
      {"app", "create", "shop", "--socket", "no-equals-sign"},
      {"app", "create", "shop", "--frobnicate"},  // unknown option
      {"history", "-n", "0"},
      {"history", "-n", "many"},
      {"app", "apply", dir.Path("missing.yaml")},  // unreadable file
  };
  for (const auto& args : usage_errors) {
    ProcResult r = RunCtl(d.socket(), args);
    INFO(Joined(args) << "\n" << r.Describe());
    CHECK(r.status.Exited(2));
    CHECK_FALSE(r.err.empty());
  }
  CheckNothingRecorded(d.socket());
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: an address another app holds is refused at create and apply, naming "
                 "the app",
                 "[e2e][cli]") {
  CtlOk(d.socket(), {"app", "create", "shop", "--socket", "http=tcp://127.0.0.1:18080",
                     "--socket", "admin=unix:/tmp/relsupd-test-shop-admin.sock"});
  struct Case {
    std::vector<std::string> socket;
    const char* taken;
  };
  const Case cases[] = {
      {{"--socket", "web=tcp://127.0.0.1:18080"}, "socket 'web' (tcp://127.0.0.1:18080)"},
      {{"--socket", "web=tcp://0.0.0.0:18080"}, "socket 'web' (tcp://0.0.0.0:18080)"},
      {{"--socket", "a=unix:/tmp/relsupd-test-shop-admin.sock"}, "socket 'a'"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"app", "create", "blog"};
    args.insert(args.end(), c.socket.begin(), c.socket.end());
    ProcResult r = RunCtl(d.socket(), args);
    INFO(Joined(args) << "\n" << r.Describe());
    CHECK(r.status.Exited(1));
    CHECK_THAT(r.err, Catch::Contains(c.taken));
    CHECK_THAT(r.err, Catch::Contains("is taken by app 'shop'"));
  }
  const std::string spec =
      dir.WriteFile("blog.yaml", "name: blog\nsockets:\n  web: tcp://127.0.0.1:18080\n");
  ProcResult r = RunCtl(d.socket(), {"app", "apply", spec});
  CHECK(r.status.Exited(1));
  CHECK_THAT(r.err, Catch::Contains("is taken by app 'shop'"));
  CHECK(CtlJson(d.socket(), {"app", "list"}).size() == 1);
  // Another port, or another host on the same port, is free; the app's own
  // address applied again is its own.
  CtlOk(d.socket(), {"app", "create", "blog", "--socket", "web=tcp://127.0.0.1:18081"});
  CtlOk(d.socket(), {"app", "create", "wiki", "--socket", "web=tcp://127.0.0.2:18080"});
  CtlOk(d.socket(), {"app", "apply", dir.WriteFile("shop.yaml",
                                                   "name: shop\nsockets:\n  http: "
                                                   "tcp://127.0.0.1:18080\n")});
}

TEST_CASE_METHOD(DaemonFixture, "e2e cli: --json after the verb works as before it",
                 "[e2e][cli]") {
  ProcResult before = RunCtl(d.socket(), {"--json", "info"});
  ProcResult after = RunCtl(d.socket(), {"info", "--json"});
  INFO(before.Describe() << after.Describe());
  REQUIRE(before.status.Exited(0));
  REQUIRE(after.status.Exited(0));
  CHECK(nlohmann::json::parse(after.out)["pid"] == nlohmann::json::parse(before.out)["pid"]);
  // Deeper verbs too, and errors keep their JSON form.
  ProcResult created = RunCtl(d.socket(), {"app", "create", "shop", "--json"});
  INFO(created.Describe());
  REQUIRE(created.status.Exited(0));
  CHECK(nlohmann::json::parse(created.out).is_object());
  ProcResult missing = RunCtl(d.socket(), {"app", "show", "nope", "--json"});
  CHECK(missing.status.Exited(1));
  CHECK(nlohmann::json::parse(missing.out)["error"]["code"] == "refused");
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: a bad app name is refused, naming the name",
                 "[e2e][cli]") {
  for (const std::string& name :
       {std::string("Bad_Name"), std::string("-leading-dash"),
        std::string(64, 'a'), std::string("dots.in.name"),
        std::string("../etc")}) {
    // "--" ends the options, so "-leading-dash" reaches the daemon.
    ProcResult r = RunCtl(d.socket(), {"app", "create", "--", name});
    INFO(r.Describe());
    CHECK(r.status.Exited(1));
    CHECK_THAT(r.err, Catch::Contains("'" + name + "'"));
  }
  CheckNothingRecorded(d.socket());
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: a duplicate create is refused and records nothing",
                 "[e2e][cli]") {
  std::string out = CtlOk(d.socket(), {"app", "create", "shop", "--keep", "3"});
  CHECK_THAT(out, Catch::Contains("Created app 'shop'"));
  ProcResult r = RunCtl(d.socket(), {"app", "create", "shop", "--keep", "5"});
  INFO(r.Describe());
  CHECK(r.status.Exited(1));
  CHECK_THAT(r.err, Catch::Contains("'shop' exists already"));
  CHECK(CtlJson(d.socket(), {"app", "show", "shop"})["keep_releases"] == 3);
  CHECK(CtlJson(d.socket(), {"history", "shop"}).size() == 1);
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: bad daemon-held sockets are refused, naming them",
                 "[e2e][cli]") {
  struct Case {
    const char* arg;
    const char* named;
  };
  for (const Case& c : {Case{"x=ftp://1.2.3.4:21", "ftp://1.2.3.4:21"},
                        Case{"http=tcp://0.0.0.0:99999", "99999"},
                        Case{"http=tcp://example.com:80", "example.com"},
                        Case{"http=unix:relative.sock", "unix:relative.sock"},
                        Case{"Bad Name=tcp://127.0.0.1:80", "Bad Name"}}) {
    ProcResult r =
        RunCtl(d.socket(), {"app", "create", "shop", "--socket", c.arg});
    INFO(r.Describe());
    CHECK(r.status.Exited(1));
    CHECK_THAT(r.err, Catch::Contains(c.named));
  }
  CHECK(CtlJson(d.socket(), {"app", "list"}).empty());
  // Good ones pass and are shown back.
  CtlOk(d.socket(),
        {"app", "create", "shop", "--socket", "http=tcp://0.0.0.0:8080",
         "--socket", "admin=unix:/run/shop/admin.sock"});
  Json sockets = CtlJson(d.socket(), {"app", "show", "shop"})["sockets"];
  CHECK(sockets == Json{{"admin", "unix:/run/shop/admin.sock"},
                        {"http", "tcp://0.0.0.0:8080"}});
}

TEST_CASE_METHOD(
    DaemonFixture,
    "e2e cli: app apply is idempotent and records only real changes",
    "[e2e][cli][apply]") {
  const std::string spec = dir.WriteFile("shop.yaml",
                                         "name: shop\n"
                                         "keep_releases: 5\n"
                                         "sockets:\n"
                                         "  http: \"tcp://127.0.0.1:8080\"\n"
                                         "strategy: stop-first\n"
                                         "activation_deadline: 30s\n"
                                         "auto_rollback: false\n");
  CHECK_THAT(CtlOk(d.socket(), {"app", "apply", spec}),
             Catch::Contains("applied"));
  std::string second = CtlOk(d.socket(), {"app", "apply", spec});
  CHECK_THAT(second, Catch::Contains("unchanged"));
  Json history = CtlJson(d.socket(), {"history", "shop"});
  REQUIRE(history.size() == 1);
  CHECK(history[0]["kind"] == "app-created");

  Json app = CtlJson(d.socket(), {"app", "show", "shop"});
  CHECK(app["keep_releases"] == 5);
  CHECK(app["strategy"] == "stop-first");
  CHECK(app["activation_deadline_ms"] == 30'000);
  CHECK(app["auto_rollback"] == false);

  // A real change is applied once and recorded as what changed.
  dir.WriteFile("shop.yaml",
                "name: shop\nkeep_releases: 7\nsockets:\n"
                "  http: \"tcp://127.0.0.1:8080\"\nstrategy: stop-first\n"
                "activation_deadline: 30s\nauto_rollback: false\n");
  CHECK_THAT(CtlOk(d.socket(), {"app", "apply", spec}),
             Catch::Contains("applied"));
  CHECK_THAT(CtlOk(d.socket(), {"app", "apply", spec}),
             Catch::Contains("unchanged"));
  history = CtlJson(d.socket(), {"history", "shop"});
  REQUIRE(history.size() == 2);
  CHECK(history[1]["kind"] == "app-updated");
  CHECK(history[1]["detail"] == Json{{"keep_releases", {5, 7}}});
  Json applied = CtlJson(d.socket(), {"app", "apply", spec});
  CHECK(applied["changed"] == false);
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: app apply --check says what would change and changes nothing",
                 "[e2e][cli][apply]") {
  const std::string spec = dir.WriteFile("shop.yaml", "name: shop\nkeep_releases: 5\n");
  // An app that does not exist: it would be created; nothing is.
  Json check = CtlJson(d.socket(), {"app", "apply", spec, "--check"});
  CHECK(check["check"] == true);
  CHECK(check["exists"] == false);
  CHECK(check["changed"] == true);
  CHECK(check["diff"]["keep_releases"] == Json{nullptr, 5});
  CHECK(check["diff"]["name"] == Json{nullptr, "shop"});
  CHECK(CtlJson(d.socket(), {"app", "list"}).empty());
  CHECK_THAT(CtlOk(d.socket(), {"app", "apply", spec, "--check"}),
             Catch::Contains("App 'shop' would be created"));
  CheckNothingRecorded(d.socket());

  CtlOk(d.socket(), {"app", "apply", spec});
  check = CtlJson(d.socket(), {"app", "apply", spec, "--check"});
  CHECK(check["exists"] == true);
  CHECK(check["changed"] == false);
  CHECK(check["diff"] == Json::object());
  CHECK_THAT(CtlOk(d.socket(), {"app", "apply", spec, "--check"}),
             Catch::Contains("App 'shop' is up to date: nothing would change"));

  // A change: named, with old and new; the app and history stay as they were.
  dir.WriteFile("shop.yaml",
                "name: shop\nkeep_releases: 3\nstrategy: stop-first\nactivation_deadline: 90s\n");
  check = CtlJson(d.socket(), {"app", "apply", spec, "--check"});
  CHECK(check["changed"] == true);
  CHECK(check["diff"] == Json{{"activation_deadline_ms", {60'000, 90'000}},
                              {"keep_releases", {5, 3}},
                              {"strategy", {"start-first", "stop-first"}}});
  const std::string human = CtlOk(d.socket(), {"app", "apply", spec, "--check"});
  CHECK_THAT(human, Catch::Contains("App 'shop' would change:\n"));
  CHECK_THAT(human, Catch::Contains("  keep_releases: 5 -> 3\n"));
  CHECK_THAT(human, Catch::Contains("  strategy: start-first -> stop-first\n"));
  // As the spec file names it, not the daemon's field.
  CHECK_THAT(human, Catch::Contains("  activation_deadline: 1m -> 1m30s\n"));
  CHECK(CtlJson(d.socket(), {"app", "show", "shop"})["keep_releases"] == 5);
  CHECK(CtlJson(d.socket(), {"history", "shop"}).size() == 1);
  // A param the daemon does not know is refused, never ignored (an older
  // daemon ignoring `check` would have applied the spec).
  Json raw = e2e::CallRaw(d.socket(), "app.apply",
                          {{"yaml", "name: other\n"}, {"dry_run", true}});
  CHECK(raw.contains("error"));
  CHECK_THAT(raw["error"]["message"].get<std::string>(), Catch::Contains("dry_run"));
  CHECK(CtlJson(d.socket(), {"app", "list"}).size() == 1);
  // A bad spec is refused under --check as without it.
  dir.WriteFile("shop.yaml", "name: shop\nkeep_releases: lots\n");
  ProcResult bad = RunCtl(d.socket(), {"app", "apply", spec, "--check"});
  CHECK(bad.status.Exited(1));
  CHECK_THAT(bad.err, Catch::Contains("keep_releases"));
}

TEST_CASE_METHOD(
    DaemonFixture,
    "e2e cli: app apply of a bad spec names file, line and column and "
    "creates nothing",
    "[e2e][cli][apply]") {
  struct Case {
    const char* name;
    const char* text;
    const char* where;
    const char* message;
  };
  const Case cases[] = {
      {"unknown key", "name: shop\nkeep_releases: 3\ncolour: blue\n",
       ":3:1: ", "unknown key 'colour'"},
      {"wrong type", "name: shop\nkeep_releases: many\n",
       ":2:16: ", "keep_releases"},
      {"bad socket", "name: shop\nsockets:\n  http: \"ftp://x\"\n",
       ":3:9: ", "ftp://x"},
      {"bad name", "name: Shop_1\n", ":1:7: ", "Shop_1"},
      {"syntax error", "name: shop\nsockets: {http: \"tcp://127.0.0.1:1\"\n",
       ":", "invalid YAML"},
  };
  for (const Case& c : cases) {
    const std::string file = dir.WriteFile("bad.yaml", c.text);
    ProcResult r = RunCtl(d.socket(), {"app", "apply", file});
    INFO(c.name << "\n" << r.Describe());
    CHECK(r.status.Exited(1));
    CHECK_THAT(r.err, Catch::Contains(file + c.where));
    CHECK_THAT(r.err, Catch::Contains(c.message));
  }
  CheckNothingRecorded(d.socket());
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: --json prints arrays of snake_case objects",
                 "[e2e][cli][json]") {
  CHECK(CtlJson(d.socket(), {"app", "list"}) == Json::array());
  CHECK(CtlJson(d.socket(), {"history"}) == Json::array());
  CtlOk(d.socket(),
        {"app", "create", "shop", "--socket", "http=tcp://0.0.0.0:8080"});
  CtlOk(d.socket(), {"app", "create", "cart", "--strategy", "stop-first"});

  Json apps = CtlJson(d.socket(), {"app", "list"});
  REQUIRE(apps.is_array());
  REQUIRE(apps.size() == 2);
  for (const auto& a : apps) {
    CheckSnakeCaseKeys(a);
    for (const char* key :
         {"name", "user", "group", "keep_releases", "sockets", "strategy",
          "activation_deadline_ms", "auto_rollback"})
      CHECK(a.contains(key));
  }
  Json history = CtlJson(d.socket(), {"history"});
  REQUIRE(history.is_array());
  REQUIRE(history.size() == 2);
  for (const auto& e : history) {
    CheckSnakeCaseKeys(e);
    for (const char* key : {"id", "time", "app", "kind", "actor", "actor_uid"})
      CHECK(e.contains(key));
  }
  CHECK(history[0]["app"] == "shop");  // oldest first
  CHECK(history[1]["app"] == "cart");
  Json limited = CtlJson(d.socket(), {"history", "-n", "1"});
  REQUIRE(limited.size() == 1);
  CHECK(limited[0]["app"] == "cart");
  Json info = CtlJson(d.socket(), {"info"});
  CheckSnakeCaseKeys(info);
  CHECK(info["pid"] == d.pid());
  CHECK(info["uptime_ms"].is_number_integer());
  // The table prints the uptime as `ps` does ("850ms", "7s"), not "607563 ms".
  std::string info_text = CtlOk(d.socket(), {"info"});
  CHECK_THAT(info_text, Catch::Contains("uptime"));
  CHECK(info_text.find(" ms\n") == std::string::npos);
  Json verify = CtlJson(d.socket(), {"history", "--verify"});
  CheckSnakeCaseKeys(verify);
  CHECK(verify["ok"] == true);
  CHECK(verify["checked"] == 2);

  // The human forms are tables with the names in them.
  std::string table = CtlOk(d.socket(), {"app", "list"});
  CHECK_THAT(table, Catch::Contains("NAME"));
  CHECK_THAT(table, Catch::Contains("shop"));
  CHECK_THAT(table, Catch::Contains("cart"));
  CHECK_THAT(table, Catch::Contains("http=tcp://0.0.0.0:8080"));
}

TEST_CASE("e2e cli: --help on every subcommand exits 0", "[e2e][cli][help]") {
  std::vector<ProcResult> help;
  const auto commands = AllCommands(&help);
  REQUIRE(help.size() == commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    INFO(Joined(commands[i]) << " --help\n" << help[i].Describe());
    CHECK(help[i].status.Exited(0));
    CHECK_THAT(help[i].out, Catch::Contains("Usage"));
    // One paragraph of exit codes at most (a verb's own replaces ctl's).
    size_t paragraphs = 0;
    for (size_t at = help[i].out.find("\nExit code"); at != std::string::npos;
         at = help[i].out.find("\nExit code", at + 1))
      ++paragraphs;
    CHECK(paragraphs <= 1);
  }
}

TEST_CASE("e2e cli: --version on every subcommand exits 0",
          "[e2e][cli][help]") {
  static const std::regex kVersion("^relsupd [0-9]+\\.[0-9]+\\.[0-9]+");
  std::vector<ProcResult> help;
  for (const auto& words : AllCommands(&help)) {
    std::vector<std::string> argv = {RelsupdBin()};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.push_back("--version");
    ProcResult r = RunProcess(argv);
    INFO(Joined(words) << " --version\n" << r.Describe());
    CHECK(r.status.Exited(0));
    CHECK(std::regex_search(r.out, kVersion));
  }
}

// ---- errors caught early, and all of them (issue 18) ----

TEST_CASE("e2e cli: relsupd build refuses a bad process file, listing every "
          "error, running and writing nothing",
          "[e2e][cli][build]") {
  TempDir dir;
  const std::string marker = dir.Path("command-ran");
  std::filesystem::create_directories(dir.Path("src"));
  dir.WriteFile("src/relsupd.yaml",
                "biuld:\n"
                "  command: touch " + marker + "\n"
                "processes:\n"
                "  web:\n"
                "    command: ./server\n"
                "    sockets: http\n"
                "    scael: 2\n");
  const std::string out = dir.Path("app.tar.gz");
  ProcResult r = RunProcess({RelsupdBin(), "build", dir.Path("src"), "-o", out});
  INFO(r.Describe());
  CHECK(r.status.Exited(1));
  CHECK(r.out.empty());
  const std::string file = dir.Path("src") + "/relsupd.yaml";
  CHECK(r.err == "relsupd: build failed: the process file of '" + dir.Path("src") +
                     "' is not valid:\n"
                     "  " + file + ":1:1: unknown key 'biuld' (did you mean 'build'?)\n"
                     "  " + file + ":7:5: unknown key 'scael' (did you mean 'scale'?)\n"
                     "  " + file + ":6:14: 'sockets' must be a list of socket names\n");
  CHECK_FALSE(support::Exists(out));
  CHECK_FALSE(support::Exists(out + ".tmp"));
  CHECK_FALSE(support::Exists(marker));
}

TEST_CASE("e2e cli: release create refuses a bad process file and a socket the "
          "app does not have, creating nothing",
          "[e2e][cli][release]") {
  release_test::Stage s("", {}, "shop",
                        {"--socket", "http=tcp://127.0.0.1:" +
                                         std::to_string(support::FreePort())});
  // Imported as is (not through `relsupd build`, which would refuse it).
  auto create = [&](const std::string& yaml) {
    const std::string file = s.Artifact("bad.tar.gz", {release_test::File("relsupd.yaml", yaml)});
    const std::string id = s.Import(file)["id"];
    return s.Ctl({"release", "create", "shop", "--build", id});
  };
  ProcResult r = create("processes:\n  web:\n    comand: ./x\n    restart: sometimes\n");
  INFO(r.Describe());
  CHECK(r.status.Exited(1));
  CHECK_THAT(r.err, Catch::StartsWith("relsupd: relsupd.yaml:3:5: unknown key 'comand' "
                                      "(did you mean 'command'?)\n"));
  CHECK_THAT(r.err, Catch::Contains("\n  relsupd.yaml:3:5: process 'web' has no 'command'\n"));
  CHECK_THAT(r.err, Catch::Contains("\n  relsupd.yaml:4:14: 'restart' must be always, "
                                    "on-failure or never, not 'sometimes'\n"));

  r = create("processes:\n  web: {command: ./x, sockets: [htp]}\n");
  INFO(r.Describe());
  CHECK(r.status.Exited(1));
  CHECK(r.err ==
        "relsupd: process 'web' uses socket 'htp', which app 'shop' does not have (its "
        "sockets: 'http'); did you mean 'http'?; fix 'sockets:' in relsupd.yaml or add "
        "the socket with 'ctl app apply'\n");
  // Nothing made: no release, no row, no slot, nothing left in staging.
  CHECK(s.Releases().empty());
  CHECK(release_test::LedgerReleaseRows(s.state() + "/ledger.db", "shop") == 0);
  CHECK_FALSE(support::Exists(s.Slot(1)));
  CHECK(release_test::ListDir(s.TmpDir()).empty());
  // The same file with the right socket name makes v1.
  const std::string good = s.Artifact(
      "good.tar.gz", {release_test::File("relsupd.yaml",
                                         "processes:\n  web: {command: ./x, sockets: [http]}\n")});
  CHECK(s.Create(s.Import(good)["id"]) == "v1");
}

TEST_CASE("e2e cli: an unknown verb names the closest one, ctl help VERB "
          "prints its help",
          "[e2e][cli][help]") {
  TempDir dir;
  const std::string socket = dir.Path("nobody-listens.sock");
  ProcResult r = RunCtl(socket, {"actvate", "shop", "v2"});
  INFO(r.Describe());
  CHECK(r.status.Exited(2));
  CHECK(r.out.empty());
  CHECK(r.err ==
        "relsupd: unknown command 'actvate'; did you mean 'activate'?\n"
        "  Run 'relsupd ctl --help' for more.\n");
  r = RunCtl(socket, {"build", "improt", "shop", "x.tar"});
  INFO(r.Describe());
  CHECK(r.status.Exited(2));
  CHECK_THAT(r.err, Catch::StartsWith("relsupd: unknown command 'improt'; did you mean "
                                      "'import'?\n"));
  r = RunCtl(socket, {"qqqqqq"});
  CHECK(r.status.Exited(2));
  CHECK_THAT(r.err, Catch::StartsWith("relsupd: unknown command 'qqqqqq' for 'relsupd ctl'; "
                                      "commands: info, metrics, app,"));

  // help VERB is VERB --help, with no daemon needed.
  ProcResult help = RunCtl(socket, {"help", "activate"});
  ProcResult dashes = RunCtl(socket, {"activate", "--help"});
  INFO(help.Describe());
  CHECK(help.status.Exited(0));
  CHECK(help.out == dashes.out);
  CHECK_THAT(help.out, Catch::Contains("Usage: relsupd ctl activate"));
  help = RunCtl(socket, {"help", "build", "import"});
  CHECK(help.status.Exited(0));
  CHECK_THAT(help.out, Catch::Contains("--quiet"));
  help = RunCtl(socket, {"help", "actvate"});
  CHECK(help.status.Exited(2));
  CHECK_THAT(help.err, Catch::StartsWith("relsupd: unknown command 'actvate'; did you mean "
                                         "'activate'?"));
}

TEST_CASE("e2e cli: ctl alone lists every verb under its stage, and help VERB is VERB --help",
          "[e2e][cli][help]") {
  ProcResult alone = RunProcess({RelsupdBin(), "ctl"});
  INFO(alone.Describe());
  REQUIRE(alone.status.Exited(0));
  CHECK(alone.err.empty());
  CHECK(alone.out == RunProcess({RelsupdBin(), "ctl", "--help"}).out);
  CHECK(RunProcess({RelsupdBin(), "ctl", "help"}).out == alone.out);  // help, no VERB
  // With --json a script gets a JSON usage error, not a page of help.
  ProcResult json_alone = RunProcess({RelsupdBin(), "ctl", "--json"});
  CHECK(json_alone.status.Exited(2));
  CHECK(Json::parse(json_alone.out)["error"]["code"] == "usage");
  // A verb that needs a sub-verb and got none names them.
  ProcResult bare = RunProcess({RelsupdBin(), "ctl", "app"});
  CHECK(bare.status.Exited(2));
  CHECK_THAT(bare.err, Catch::StartsWith("relsupd: 'relsupd ctl app' needs a command: create, "
                                         "list, show, apply, delete\n"));
  // The stages in order, and no verb outside them.
  size_t at = 0;
  for (const char* heading : {"\nBuild (source to artifact):\n", "\nRelease (artifact + config to vN):\n",
                              "\nRun (the live release's processes):\n", "\nInspect:\n",
                              "\nDaemon:\n", "\nHelp:\n"}) {
    const size_t found = alone.out.find(heading, at);
    INFO(heading);
    CHECK(found != std::string::npos);
    if (found != std::string::npos) at = found;
  }
  CHECK(alone.out.find("Other:") == std::string::npos);
  CHECK(alone.out.find("Subcommands:") == std::string::npos);
  // A verb is under the stage it belongs to.
  auto section_of = [&](const std::string& verb) {
    const size_t line = alone.out.find("\n  " + verb + " ");
    REQUIRE(line != std::string::npos);
    const size_t heading_end = alone.out.rfind(":\n", line);
    const size_t heading = alone.out.rfind("\n\n", heading_end);
    return alone.out.substr(heading + 2, heading_end - heading - 2);
  };
  CHECK(section_of("build") == "Build (source to artifact)");
  CHECK(section_of("release") == "Release (artifact + config to vN)");
  CHECK(section_of("activate") == "Run (the live release's processes)");
  CHECK(section_of("logs") == "Inspect");
  CHECK(section_of("daemon-reexec") == "Daemon");

  // Every verb and sub-verb: help WORDS prints what WORDS --help prints.
  std::vector<ProcResult> help;
  const auto commands = AllCommands(&help);
  size_t compared = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    const std::vector<std::string>& words = commands[i];
    if (words.size() < 2 || words[0] != "ctl" || words[1] == "help") continue;
    std::vector<std::string> argv = {RelsupdBin(), "ctl", "help"};
    argv.insert(argv.end(), words.begin() + 1, words.end());
    ProcResult r = RunProcess(argv);
    INFO(Joined(argv) << "\n" << r.Describe());
    CHECK(r.status.Exited(0));
    CHECK(r.out == help[i].out);
    ++compared;
  }
  CHECK(compared > 25);
}

TEST_CASE_METHOD(DaemonFixture,
                 "e2e cli: with --json an error is a JSON document on stdout",
                 "[e2e][cli][json]") {
  struct Case {
    std::vector<std::string> args;
    int exit;
    const char* code;
    const char* message;
  };
  const Case cases[] = {
      {{"--json", "app", "show", "nope"}, 1, "refused", "app 'nope' does not exist"},
      {{"--json", "scale", "nope", "web=1"}, 1, "refused", "app 'nope' does not exist"},
      {{"--json", "actvate"}, 2, "usage", "unknown command 'actvate'; did you mean 'activate'?"},
      {{"--json", "scale", "shop", "web"}, 2, "usage", "'web' is not TYPE=N"},
  };
  for (const Case& c : cases) {
    ProcResult r = RunCtl(d.socket(), c.args);
    INFO(Joined(c.args) << "\n" << r.Describe());
    CHECK(r.status.Exited(c.exit));
    CHECK(r.err.empty());
    Json j = Json::parse(r.out, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["error"]["code"] == c.code);
    CHECK(j["error"]["exit"] == c.exit);
    CHECK_THAT(j["error"]["message"].get<std::string>(), Catch::StartsWith(c.message));
  }
  ProcResult r = RunCtl(dir.Path("nobody.sock"), {"--json", "info"});
  CHECK(r.status.Exited(3));
  CHECK(Json::parse(r.out)["error"]["code"] == "unreachable");
  CheckNothingRecorded(d.socket());
}

TEST_CASE("e2e cli: scale and logs name a missing app or process type, logs "
          "--release filters, build import --quiet prints the id",
          "[e2e][cli][logs]") {
  release_test::Stage s(run_test::FastConfig());
  // Without a daemon-side app: the app is named.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"scale", "nope", "web=1"},
        {"start", "nope"},
        {"stop", "nope"},
        {"restart", "nope"},
        {"logs", "nope"}}) {
    ProcResult r = s.Ctl(args);
    INFO(Joined(args) << "\n" << r.Describe());
    CHECK(r.status.Exited(1));
    CHECK(r.err == "relsupd: app 'nope' does not exist\n");
  }

  // --quiet: the build id alone.
  const std::string file = s.Artifact(
      "v1.tar.gz",
      {release_test::File("relsupd.yaml",
                          "processes:\n"
                          // More records than one page's scan looks at
                          // (LogStore::kScanBudget, 20,000) in each
                          // release, before the marker.
                          "  web: {command: 'seq 1 25000 && echo from-$RELSUPD_RELEASE && "
                          "exec sleep 1000'}\n"
                          "  worker: {command: 'exec sleep 1000'}\n")});
  ProcResult imported = s.Ctl({"build", "import", "shop", file, "--quiet"});
  INFO(imported.Describe());
  REQUIRE(imported.status.Exited(0));
  const std::string id = s.CtlJson({"build", "list", "shop"})[0]["id"];
  CHECK(imported.out == id + "\n");
  CHECK(imported.err.empty());

  const std::string v1 = s.Create(id);
  s.CtlOk({"activate", "shop", v1});
  REQUIRE(run_test::WaitLog(s, "from-v1"));
  const std::string v2 = s.Create(id, {"--set", "A=1"});
  s.CtlOk({"activate", "shop", v2});
  REQUIRE(run_test::WaitLog(s, "from-v2"));

  ProcResult r = s.Ctl({"logs", "shop", "--process", "wbe"});
  INFO(r.Describe());
  CHECK(r.status.Exited(1));
  CHECK(r.err ==
        "relsupd: release v2 of 'shop' has no process type 'wbe' (its types: 'web' and "
        "'worker'), nor has any other release of it; did you mean 'web'?\n");
  // Given the release, only that one is asked.
  r = s.Ctl({"logs", "shop", "--process", "wbe", "--release", "v1"});
  CHECK(r.status.Exited(1));
  CHECK(r.err ==
        "relsupd: release v1 of 'shop' has no process type 'wbe' (its types: 'web' and "
        "'worker'); did you mean 'web'?\n");
  r = s.Ctl({"logs", "shop", "--release", "v9"});
  CHECK(r.status.Exited(1));
  CHECK(r.err == "relsupd: app 'shop' has no release v9\n");
  r = s.Ctl({"scale", "shop", "wbe=2"});
  CHECK(r.status.Exited(1));
  CHECK_THAT(r.err, Catch::Contains("no process type 'wbe'"));

  Json only_v1 = run_test::Logs(s, {"--release", "v1"});
  REQUIRE_FALSE(only_v1.empty());
  bool said = false;
  for (const auto& rec : only_v1) {
    INFO(rec.dump());
    CHECK(rec["release"] == "v1");
    said = said || rec["text"] == "from-v1";
  }
  CHECK(said);
  Json only_v2 = run_test::Logs(s, {"--release", "v2", "--process", "web"});
  REQUIRE_FALSE(only_v2.empty());
  for (const auto& rec : only_v2) CHECK(rec["release"] == "v2");
}

}  // namespace relsupd::e2e
