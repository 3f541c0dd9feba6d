// E2E: the daemon's config file. A bad file stops the daemon at once with a
// message naming file, line and column, and nothing is created; a good file
// is honoured.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/e2e/harness.h"

namespace relsupd::e2e {
namespace {

bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

// Runs `relsupd daemon` with `config`, expecting it to refuse to start.
ProcResult RunFailingDaemon(const TempDir& dir, const std::string& config) {
  const int64_t start = NowMs();
  ProcResult r =
      RunProcess({RelsupdBin(), "daemon", "--state-dir", dir.Path("state"),
                  "--socket", dir.Path("relsupd.sock"), "--config", config},
                 RunOptions{.timeout_ms = 3'000});
  INFO(r.Describe());
  // "At once": by itself, well within the deadline.
  CHECK_FALSE(r.status.timed_out);
  CHECK(NowMs() - start < 3'000);
  return r;
}

void RequireNotStarted(const TempDir& dir, const ProcResult& r) {
  INFO(r.Describe());
  REQUIRE(r.status.Exited(1));
  CHECK_FALSE(Exists(dir.Path("relsupd.sock")));
  CHECK_FALSE(Exists(dir.Path("state/ledger.db")));
  // Nothing for the operator on stdout; the reason goes to stderr.
  CHECK(r.out.empty());
}

struct BadConfig {
  const char* name;
  const char* text;
  const char* where;    // ":LINE:COL: " expected after the path
  const char* message;  // expected in the error
};

}  // namespace

TEST_CASE(
    "e2e config: a bad config file stops the daemon at once, naming "
    "file, line and column",
    "[e2e][config]") {
  const BadConfig cases[] = {
      {"unknown key", "log_level: info\nsocket_mode: \"0660\"\nbogus: 1\n",
       ":3:1: ", "unknown key 'bogus'"},
      {"max_request_bytes not an integer",
       "log_level: info\nmax_request_bytes: lots\n",
       ":2:20: ", "'max_request_bytes' must be an integer, not 'lots'"},
      {"socket_mode not a mode", "# the socket\nsocket_mode: rw\n",
       ":2:14: ", "'socket_mode' must be an octal mode"},
      {"socket_group a list", "socket_group: [a, b]\n",
       ":1:15: ", "'socket_group' must be a string"},
      {"log_level out of range", "log_level: loud\n",
       ":1:12: ", "'log_level' must be one of"},
      {"max_request_bytes too small", "max_request_bytes: 10\n",
       ":1:20: ", "'max_request_bytes' must be between"},
      {"relative state_dir", "state_dir: relative/dir\n",
       ":1:12: ", "'state_dir' must be an absolute path"},
      {"YAML syntax error: unclosed flow sequence",
       "log_level: info\nsocket: [unclosed\nadmin_group: x\n",
       ":3:", "invalid YAML"},
      {"YAML syntax error: tab indentation",
       "log_level: info\n\tsocket_mode: 1\n", ":2:1: ", "invalid YAML"},
      {"not a mapping", "- a\n- b\n", ":1:1: ", "expected a mapping"},
  };
  for (const BadConfig& c : cases) {
    DYNAMIC_SECTION(c.name) {
      TempDir dir;
      const std::string cfg = dir.WriteFile("cfg.yaml", c.text);
      ProcResult r = RunFailingDaemon(dir, cfg);
      INFO(r.Describe());
      RequireNotStarted(dir, r);
      CHECK_THAT(r.err, Catch::Contains(cfg + c.where));
      CHECK_THAT(r.err, Catch::Contains(c.message));
      // The state dir is not even created: the config is read first.
      CHECK_FALSE(Exists(dir.Path("state")));
    }
  }
}

TEST_CASE("e2e config: a missing config file is a usage error naming it",
          "[e2e][config]") {
  TempDir dir;
  ProcResult r = RunRefusedDaemon(
      {"--state-dir", dir.Path("state"), "--socket", dir.Path("relsupd.sock"),
       "--config", dir.Path("missing.yaml")},
      5'000);
  INFO(r.Describe());
  CHECK_THAT(r.err, Catch::Contains("missing.yaml"));
  CHECK_FALSE(Exists(dir.Path("relsupd.sock")));
}

// yaml-cpp keeps both entries of a repeated key; without a check the
// parser would read the first and silently ignore the operator's later line.
TEST_CASE("e2e config: a key given twice is refused, naming the second one",
          "[e2e][config]") {
  TempDir dir;
  const std::string cfg =
      dir.WriteFile("cfg.yaml", "log_level: info\nlog_level: debug\n");
  ProcResult r = RunFailingDaemon(dir, cfg);
  INFO(r.Describe());
  RequireNotStarted(dir, r);
  CHECK_THAT(r.err, Catch::Contains(cfg + ":2:1: "));
  CHECK_THAT(r.err, Catch::Contains("log_level"));
}

TEST_CASE("e2e config: a valid config file is honoured", "[e2e][config]") {
  TempDir dir;
  const std::string socket = dir.Path("from-config.sock");
  const std::string state = dir.Path("state-from-config");
  const std::string cfg =
      dir.WriteFile("relsupd.yaml",
                    "# every key set\n"
                    "state_dir: " +
                        state +
                        "\n"
                        "socket: " +
                        socket +
                        "\n"
                        "socket_mode: \"0600\"\n"
                        "socket_group: nogroup-does-not-exist\n"
                        "admin_group: admin-does-not-exist\n"
                        "log_level: debug\n"
                        "max_request_bytes: 4096\n");
  DaemonProcess d(dir, {.config = cfg,
                        .state_dir = state,
                        .socket = socket,
                        .pass_paths = false});
  Json info = Call(socket, "daemon.info");
  CHECK(info["socket"] == socket);
  CHECK(info["state_dir"] == state);
  CHECK(info["pid"] == d.pid());
  CHECK(Exists(state + "/ledger.db"));
  CHECK_FALSE(Exists(dir.Path("relsupd.sock")));

  struct stat st {};
  REQUIRE(::lstat(socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);

  // max_request_bytes: 4096 -> a 5000-byte request is refused.
  RawConn big(socket);
  std::string pad(5'000, 'x');
  REQUIRE(
      big.Send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\","
               "\"params\":{\"pad\":\"" +
               pad + "\"}}\n"));
  auto line = big.ReadLine();
  REQUIRE(line);
  CHECK_THAT(*line, Catch::Contains("max_request_bytes (4096 bytes)"));

  // log_level: debug -> connections are logged (at debug level only).
  REQUIRE(RunCtl(socket, {"info"}).status.Exited(0));
  CHECK_THAT(d.Log(), Catch::Contains("Control connection from"));
  CHECK(d.Terminate().Exited(0));
}

TEST_CASE("e2e config: --state-dir and --socket override the config file",
          "[e2e][config]") {
  TempDir dir;
  const std::string cfg = dir.WriteFile(
      "relsupd.yaml", "state_dir: " + dir.Path("cfg-state") +
                          "\nsocket: " + dir.Path("cfg.sock") + "\n");
  DaemonProcess d(dir, {.config = cfg});
  Json info = Call(d.socket(), "daemon.info");
  CHECK(info["socket"] == dir.Path("relsupd.sock"));
  CHECK(info["state_dir"] == dir.Path("state"));
  CHECK_FALSE(Exists(dir.Path("cfg.sock")));
  CHECK_FALSE(Exists(dir.Path("cfg-state")));
}

}  // namespace relsupd::e2e
