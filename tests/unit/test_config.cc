#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "daemon/config/app_spec.h"
#include "daemon/config/build_spec.h"
#include "daemon/config/daemon_config.h"
#include "daemon/config/ready_sockets.h"
#include "tests/support/failure.h"

namespace relsupd {
namespace {

std::string ErrorOf(const std::string& yaml) {
  return support::RefusalMessage(ParseDaemonConfig(yaml, "relsupd.yaml").status());
}

// `yaml` parsed as a daemon config, which must be valid.
DaemonConfig ValidConfig(const std::string& yaml) {
  auto c = ParseDaemonConfig(yaml, "f.yaml");
  INFO((c.ok() ? std::string() : c.status().message()));
  REQUIRE(c.ok());
  return *c;
}

TEST_CASE("an empty daemon config gives the embedded defaults") {
  auto c = ParseDaemonConfig("", "relsupd.yaml");
  REQUIRE(c.ok());
  CHECK(*c == DaemonConfig{});
  CHECK(c->state_dir == "/var/lib/relsupd");
  CHECK(c->socket_mode == 0660);
  CHECK(c->max_request_bytes == 1 << 20);
  auto comments = ParseDaemonConfig("# only a comment\n", "relsupd.yaml");
  REQUIRE(comments.ok());
  CHECK(*comments == DaemonConfig{});
}

TEST_CASE("every daemon config key is read") {
  const DaemonConfig c = ValidConfig(
      "state_dir: /srv/relsupd\n"
      "socket: /run/x.sock\n"
      "socket_mode: \"0600\"\n"
      "socket_group: ops\n"
      "admin_group: wheel\n"
      "log_level: debug\n"
      "max_request_bytes: 4096\n");
  CHECK(c.state_dir == "/srv/relsupd");
  CHECK(c.socket == "/run/x.sock");
  CHECK(c.socket_mode == 0600);
  CHECK(c.socket_group == "ops");
  CHECK(c.admin_group == "wheel");
  CHECK(c.log_level == "debug");
  CHECK(c.max_request_bytes == 4096);
  // An unquoted mode is read as the octal the operator wrote.
  CHECK(ParseDaemonConfig("socket_mode: 0640\n", "f")->socket_mode == 0640);
}

TEST_CASE("daemon config errors name file, line and column") {
  CHECK(ErrorOf("log_level: info\nbogus: 1\n") ==
        "relsupd.yaml:2:1: unknown key 'bogus' (known keys: state_dir, socket, "
        "socket_mode, socket_group, admin_group, log_level, max_request_bytes, "
        "max_artifact_bytes, max_unpacked_bytes, max_entries, "
        "max_compression_ratio, cgroup, restart_initial_delay, "
        "restart_max_delay, restart_reset_after, crash_limit, crash_window, "
        "log_max_file_bytes, log_max_files, log_rate_limit, app_uid_range, "
        "allow_root_apps, metrics_listen)");
  CHECK(ErrorOf("max_request_bytes: lots\n") ==
        "relsupd.yaml:1:20: 'max_request_bytes' must be an integer, not 'lots'");
  CHECK(ErrorOf("\nmax_request_bytes: 10\n").rfind("relsupd.yaml:2:20: ", 0) == 0);
  CHECK(ErrorOf("socket_mode: rw\n").rfind("relsupd.yaml:1:14: 'socket_mode'", 0) == 0);
  CHECK(ErrorOf("socket_mode: \"0999\"\n").find("octal") != std::string::npos);
  CHECK(ErrorOf("log_level: loud\n").rfind("relsupd.yaml:1:12: 'log_level'", 0) == 0);
  CHECK(ErrorOf("state_dir: relative/dir\n").find("absolute path") !=
        std::string::npos);
  CHECK(ErrorOf("socket: [a, b]\n").rfind("relsupd.yaml:1:9: 'socket' must be a string", 0) == 0);
  CHECK(ErrorOf("a: [1, 2\n").rfind("relsupd.yaml:", 0) == 0);
  CHECK(ErrorOf("a: [1, 2\n").find("invalid YAML") != std::string::npos);
  CHECK(ErrorOf("- just\n- a list\n") == "relsupd.yaml:1:1: expected a mapping of keys");
}

// The run-stage keys of a daemon config, in the order DaemonConfig declares
// them.
struct RunStageKeys {
  std::string cgroup;
  int64_t restart_initial_delay_ms;
  int64_t restart_max_delay_ms;
  int64_t restart_reset_after_ms;
  int64_t crash_limit;
  int64_t crash_window_ms;
  uint64_t log_max_file_bytes;
  int64_t log_max_files;
  uint64_t log_rate_limit;
};

void CheckRunStageKeys(const DaemonConfig& c, const RunStageKeys& want) {
  CHECK(c.cgroup == want.cgroup);
  CHECK(c.restart_initial_delay_ms == want.restart_initial_delay_ms);
  CHECK(c.restart_max_delay_ms == want.restart_max_delay_ms);
  CHECK(c.restart_reset_after_ms == want.restart_reset_after_ms);
  CHECK(c.crash_limit == want.crash_limit);
  CHECK(c.crash_window_ms == want.crash_window_ms);
  CHECK(c.log_max_file_bytes == want.log_max_file_bytes);
  CHECK(c.log_max_files == want.log_max_files);
  CHECK(c.log_rate_limit == want.log_rate_limit);
}

TEST_CASE("the run-stage daemon config keys are read") {
  const RunStageKeys defaults{"auto", 100, 30'000, 10'000, 10, 60'000, 8u << 20, 4, 4u << 20};
  CheckRunStageKeys(DaemonConfig{}, defaults);

  struct Case {
    const char* name;
    std::string yaml;
    RunStageKeys want;
  };
  const Case cases[] = {
      {"every key",
       "cgroup: /sys/fs/cgroup/relsupd\n"
       "restart_initial_delay: 250ms\n"
       "restart_max_delay: 1m30s\n"
       "restart_reset_after: 20\n"  // a bare number is seconds
       "crash_limit: 3\n"
       "crash_window: 2m\n"
       "log_max_file_bytes: 65536\n"
       "log_max_files: 7\n"
       "log_rate_limit: 1024\n",
       {"/sys/fs/cgroup/relsupd", 250, 90'000, 20'000, 3, 120'000, 65536, 7, 1024}},
      // The ends of each range are accepted; the keys not given keep their
      // defaults.
      {"the ends of each range",
       "restart_initial_delay: 1h\n"
       "restart_max_delay: 24h\n"
       "restart_reset_after: 0s\n"
       "crash_limit: 1000000\n"
       "crash_window: 1ms\n"
       "log_max_file_bytes: 4096\n"
       "log_max_files: 1\n",
       {"auto", 3'600'000, 86'400'000, 0, 1'000'000, 1, 4096, 1, defaults.log_rate_limit}},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CheckRunStageKeys(ValidConfig(c.yaml), c.want);
  }
  CHECK(ParseDaemonConfig("cgroup: \"off\"\n", "f")->cgroup == "off");
  CHECK(ParseDaemonConfig("cgroup: auto\n", "f")->cgroup == "auto");
}

TEST_CASE("bad run-stage daemon config values name file, line and column") {
  // Each config and its whole error, then configs and how theirs begins.
  const std::vector<std::pair<std::string, std::string>> whole = {
      {"cgroup: relative/path\n",
       "relsupd.yaml:1:9: 'cgroup' must be auto, off or an absolute path, not 'relative/path'"},
      {"crash_limit: 0\n", "relsupd.yaml:1:14: 'crash_limit' must be between 1 and 1000000"},
      {"restart_initial_delay: 2h\n",
       "relsupd.yaml:1:24: 'restart_initial_delay' must be between 0s and 1h"},
      {"log_max_files: 0\n", "relsupd.yaml:1:16: 'log_max_files' must be between 1 and 1000"},
      // On a later line, after a good key.
      {"cgroup: auto\nrestart_max_delay: 25h\n",
       "relsupd.yaml:2:20: 'restart_max_delay' must be between 0s and 24h"},
      {"crash_window: 0s\n", "relsupd.yaml:1:15: 'crash_window' must be between 1ms and 24h"},
      {"log_max_file_bytes: 4095\n",
       "relsupd.yaml:1:21: 'log_max_file_bytes' must be between 4096 and 1099511627776"},
      {"log_rate_limit: 1023\n",
       "relsupd.yaml:1:17: 'log_rate_limit' must be between 1024 and 1099511627776"},
      {"crash_limit: many\n", "relsupd.yaml:1:14: 'crash_limit' must be an integer, not 'many'"},
  };
  for (const auto& [yaml, want] : whole) CHECK(ErrorOf(yaml) == want);
  const std::vector<std::pair<std::string, std::string>> begins = {
      {"restart_reset_after: soon\n",
       "relsupd.yaml:1:22: 'restart_reset_after': 'soon' is not a duration"},
      {"cgroup: [a]\n", "relsupd.yaml:1:9: 'cgroup' must be a string"},
  };
  for (const auto& [yaml, want] : begins) CHECK_THAT(ErrorOf(yaml), Catch::StartsWith(want));
}

TEST_CASE("app_uid_range and allow_root_apps are read and checked") {
  DaemonConfig d;
  CHECK(d.app_uid_min == 70000);
  CHECK(d.app_uid_max == 79999);
  CHECK_FALSE(d.allow_root_apps);
  auto c = ParseDaemonConfig("app_uid_range: 100000-100009\nallow_root_apps: true\n", "f");
  REQUIRE(c.ok());
  CHECK(c->app_uid_min == 100000);
  CHECK(c->app_uid_max == 100009);
  CHECK(c->allow_root_apps);
  const std::string range = "relsupd.yaml:1:16: 'app_uid_range' must be MIN-MAX, ";
  CHECK(ErrorOf("app_uid_range: 61000-62000\n") ==
        range + "clear of 61184-65535 (systemd's dynamic users, nobody, 16-bit -1), not '61000-62000'");
  CHECK(ErrorOf("app_uid_range: 0-10\n") ==
        range + "with 1000 <= MIN <= MAX <= 2147483647, not '0-10'");
  CHECK_THAT(ErrorOf("app_uid_range: 80000-70000\n"), Catch::Contains("MIN <= MAX"));
  CHECK(ErrorOf("app_uid_range: lots\n") == range + "two uids joined by '-', not 'lots'");
  CHECK_THAT(ErrorOf("allow_root_apps: maybe\n"), Catch::Contains("allow_root_apps"));
}

TEST_CASE("a missing config file is a clear error") {
  auto c = LoadDaemonConfig("/nonexistent/relsupd.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("/nonexistent/relsupd.yaml") != std::string::npos);
}

TEST_CASE("app names and socket addresses are validated") {
  for (const char* ok : {"a", "shop", "shop-2", "0x"}) CHECK(ValidateAppName(ok).ok());
  CHECK(ValidateAppName(std::string(63, 'a')).ok());
  for (const char* bad : {"", "-shop", "Shop", "shop_2", "shop.x", "a/b"})
    CHECK_FALSE(ValidateAppName(bad).ok());
  CHECK_FALSE(ValidateAppName(std::string(64, 'a')).ok());
  CHECK(ValidateAppName("Bad").message() ==
        "app name 'Bad' is not valid (use [a-z0-9][a-z0-9-]{0,62})");

  CHECK(ValidateSocketAddress("tcp://0.0.0.0:8080").ok());
  CHECK(ValidateSocketAddress("tcp://[::1]:80").ok());
  CHECK(ValidateSocketAddress("unix:/run/shop.sock").ok());
  for (const char* bad :
       {"tcp://0.0.0.0", "tcp://0.0.0.0:0", "tcp://0.0.0.0:65536",
        "tcp://example.com:80", "tcp://::1:80", "unix:relative", "ftp://x:1",
        "udp://1.2.3.4:5"})
    CHECK_FALSE(ValidateSocketAddress(bad).ok());
  CHECK_FALSE(ValidateSocketAddress("unix:/" + std::string(200, 'x')).ok());

  auto s = ParseSocketArg("http=tcp://127.0.0.1:8080");
  REQUIRE(s.ok());
  CHECK(s->name == "http");
  CHECK(s->address == "tcp://127.0.0.1:8080");
  CHECK_FALSE(ParseSocketArg("http").ok());
  CHECK_FALSE(ParseSocketArg("HTTP=tcp://127.0.0.1:1").ok());
}

TEST_CASE("app specs round-trip through JSON and refuse unknown fields") {
  AppSpec a;
  a.name = "shop";
  a.user = "nobody";
  a.group = "nogroup";
  a.keep_releases = 3;
  a.sockets = {{"web", "tcp://127.0.0.1:80"}, {"admin", "unix:/run/a.sock"}};
  a.strategy = Strategy::kStopFirst;
  a.activation_deadline_ms = 30'000;
  a.auto_rollback = false;
  REQUIRE(ValidateAppSpec(&a).ok());
  CHECK(a.sockets[0].name == "admin");  // sorted
  auto back = AppSpecFromJson(AppSpecToJson(a));
  REQUIRE(back.ok());
  CHECK(*back == a);

  CHECK(AppSpecFromJson({{"name", "x"}, {"colour", "red"}}).status().message() ==
        "unknown field 'colour' in app spec");
  CHECK(AppSpecFromJson({{"name", 5}}).status().message() ==
        "'name' must be a string");
  CHECK_FALSE(AppSpecFromJson({{"name", "x"}, {"keep_releases", 0}}).ok());
  CHECK_FALSE(AppSpecFromJson({{"name", "x"}, {"strategy", "yolo"}}).ok());
  CHECK_FALSE(AppSpecFromJson({{"name", "x"}, {"activation_deadline_ms", 5}}).ok());
}

TEST_CASE("app spec YAML is parsed with positions in errors") {
  auto spec = ParseAppSpecYaml(
      "name: shop\n"
      "user: nobody\n"
      "keep_releases: 5\n"
      "sockets:\n"
      "  http: tcp://0.0.0.0:8080\n"
      "strategy: stop-first\n"
      "activation_deadline: 2m\n"
      "auto_rollback: false\n",
      "shop.yaml");
  REQUIRE(spec.ok());
  CHECK(spec->name == "shop");
  CHECK(spec->keep_releases == 5);
  REQUIRE(spec->sockets.size() == 1);
  CHECK(spec->sockets[0].address == "tcp://0.0.0.0:8080");
  CHECK(spec->strategy == Strategy::kStopFirst);
  CHECK(spec->activation_deadline_ms == 120'000);
  CHECK_FALSE(spec->auto_rollback);

  auto err = [](const std::string& yaml) {
    auto s = ParseAppSpecYaml(yaml, "shop.yaml");
    REQUIRE_FALSE(s.ok());
    return s.status().message();
  };
  CHECK(err("name: shop\ncolour: red\n").rfind("shop.yaml:2:1: unknown key 'colour'", 0) == 0);
  CHECK(err("user: x\n") == "shop.yaml:1:1: missing key 'name'");
  CHECK(err("name: Shop\n").rfind("shop.yaml:1:7: app name 'Shop'", 0) == 0);
  CHECK(err("name: shop\nsockets:\n  http: ftp://x\n").rfind("shop.yaml:3:9: socket address", 0) == 0);
  CHECK(err("name: shop\nkeep_releases: 0\n").rfind("shop.yaml:2:16:", 0) == 0);
  CHECK(err("name: shop\nactivation_deadline: soon\n").rfind("shop.yaml:2:22:", 0) == 0);
  CHECK(err("name: shop\nauto_rollback: maybe\n").rfind("shop.yaml:2:16:", 0) == 0);
  CHECK(err("name: shop\nsockets:\n  a: tcp://1.2.3.4:1\n  a: tcp://1.2.3.4:2\n")
            .find("named twice") != std::string::npos);
}

}  // namespace
}  // namespace relsupd

#include "daemon/config/process_file.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

TEST_CASE("process files: relsupd.yaml processes with every field") {
  auto pf = ParseProcessYaml(
      "build:\n"
      "  command: make dist\n"
      "processes:\n"
      "  web:\n"
      "    command: ./bin/server\n"
      "    scale: 2\n"
      "    restart: on-failure\n"
      "    stop_signal: SIGINT\n"
      "    stop_timeout: 500ms\n"
      "    sockets: [http]\n"
      "    ready: {tcp: 8080}\n"
      "    env: {MODE: fast}\n"
      "  worker:\n"
      "    command: ./bin/worker\n"
      "    ready: notify\n",
      "relsupd.yaml");
  REQUIRE(pf.ok());
  REQUIRE(pf->processes.size() == 2);
  const ProcessSpec& web = pf->processes.at("web");
  CHECK(web.command == "./bin/server");
  CHECK(web.scale == 2);
  CHECK(web.restart == RestartPolicy::kOnFailure);
  CHECK(web.stop_signal == 2);
  CHECK(web.stop_timeout_ms == 500);
  CHECK(web.sockets == std::vector<std::string>{"http"});
  CHECK(web.ready.kind == ReadyKind::kTcp);
  CHECK(web.ready.port == 8080);
  CHECK(web.env.at("MODE") == "fast");
  const ProcessSpec& worker = pf->processes.at("worker");
  CHECK(worker.scale == 1);
  CHECK(worker.restart == RestartPolicy::kAlways);
  CHECK(worker.stop_signal == 15);
  CHECK(worker.ready.kind == ReadyKind::kNotify);
}

TEST_CASE("process file errors name file, line and column") {
  auto err = [](const std::string& yaml) {
    auto pf = ParseProcessYaml(yaml, "relsupd.yaml");
    REQUIRE_FALSE(pf.ok());
    return pf.status().message();
  };
  CHECK(err("procesess: {}\n").rfind("relsupd.yaml:1:1: unknown key 'procesess'", 0) == 0);
  CHECK(err("processes:\n  web:\n    comand: x\n").rfind("relsupd.yaml:3:5: unknown key 'comand'", 0) == 0);
  CHECK(err("processes:\n  web: {scale: 2}\n").find("has no 'command'") != std::string::npos);
  CHECK(err("processes:\n  web: {command: x, scale: lots}\n").rfind("relsupd.yaml:2:", 0) == 0);
  CHECK(err("processes:\n  web: {command: x, restart: sometimes}\n").find("'restart'") != std::string::npos);
  CHECK(err("processes:\n  web: {command: x, stop_signal: NOPE}\n").find("not a signal") != std::string::npos);
  CHECK(err("processes:\n  Web: {command: x}\n").rfind("relsupd.yaml:2:3: process type 'Web'", 0) == 0);
  CHECK(err("processes:\n  web: {command: x, ready: {tcp: 0}}\n").find("'tcp'") != std::string::npos);
  CHECK(err("processes: [\n").find("invalid YAML") != std::string::npos);
}

TEST_CASE("stop_mode is group by default, main on request, and anything else names file, type and key") {
  auto pf = ParseProcessYaml(
      "processes:\n"
      "  web: {command: gunicorn app:app, stop_mode: main}\n"
      "  worker: {command: ./w, stop_mode: group}\n"
      "  clock: {command: ./c}\n",
      "relsupd.yaml");
  REQUIRE(pf.ok());
  CHECK(pf->processes.at("web").stop_mode == StopMode::kMain);
  CHECK(pf->processes.at("worker").stop_mode == StopMode::kGroup);
  CHECK(pf->processes.at("clock").stop_mode == StopMode::kGroup);

  auto bad = ParseProcessYaml("processes:\n  web: {command: x, stop_mode: mixed}\n",
                              "relsupd.yaml");
  REQUIRE_FALSE(bad.ok());
  const std::string m = bad.status().message();
  CHECK(m.rfind("relsupd.yaml:2:", 0) == 0);
  CHECK(m.find("process 'web'") != std::string::npos);
  CHECK(m.find("'stop_mode' must be group") != std::string::npos);
  CHECK(m.find("or main") != std::string::npos);
  CHECK(m.find("not 'mixed'") != std::string::npos);
  auto list = ParseProcessYaml("processes:\n  web: {command: x, stop_mode: [main]}\n",
                               "relsupd.yaml");
  REQUIRE_FALSE(list.ok());
  CHECK(list.status().message().find("'stop_mode' must be a string") != std::string::npos);
  // A Procfile has no such key: its processes stop as a group.
  auto procfile = ParseProcfile("web: gunicorn app:app\n", "Procfile");
  REQUIRE(procfile.ok());
  CHECK(procfile->processes.at("web").stop_mode == StopMode::kGroup);
}

TEST_CASE("every error of a relsupd.yaml is reported, one per line") {
  auto pf = ParseProcessYaml(
      "biuld: {command: make, outptu: dist}\n"
      "processes:\n"
      "  web:\n"
      "    comand: ./server\n"
      "    scale: lots\n"
      "    ready: {tcp: 0}\n"
      "  Worker: {command: x}\n"
      "  cron: {command: x, stop_timeout: soon}\n"
      "release: {command: ./migrate, timout: 1m}\n",
      "relsupd.yaml");
  REQUIRE_FALSE(pf.ok());
  CHECK(pf.status().code() == StatusCode::kInvalidArgument);
  CHECK(pf.status().message() ==
        "relsupd.yaml:1:1: unknown key 'biuld' (did you mean 'build'?)\n"
        "relsupd.yaml:9:31: unknown key 'timout' (did you mean 'timeout'?)\n"
        "relsupd.yaml:4:5: unknown key 'comand' (did you mean 'command'?)\n"
        "relsupd.yaml:4:5: process 'web' has no 'command'\n"
        "relsupd.yaml:5:12: 'scale' must be an integer, not 'lots'\n"
        "relsupd.yaml:6:18: 'tcp' must be between 1 and 65535\n"
        "relsupd.yaml:7:3: process type 'Worker' is not valid (use "
        "[a-z0-9][a-z0-9_-]{0,31})\n"
        "relsupd.yaml:8:36: 'stop_timeout': 'soon' is not a duration (use e.g. "
        "500ms, 10s, 2m, 1h)");
  // The build section is checked here as well: a release is never made
  // from a file `relsupd build` would refuse.
  CHECK(ParseProcessYaml("build: {command: make, outptu: dist}\n", "relsupd.yaml")
            .status()
            .message() == "relsupd.yaml:1:24: unknown key 'outptu' (did you mean 'output'?)");
  // A key far from every known one lists them.
  CHECK(ParseProcessYaml("processes:\n  web: {command: x, zzzzzz: 1}\n", "relsupd.yaml")
            .status()
            .message() ==
        "relsupd.yaml:2:21: unknown key 'zzzzzz' (known keys: command, scale, restart, "
        "stop_signal, stop_timeout, stop_mode, sockets, ready, ready_timeout, env, health, "
        "watchdog, limits)");
}

TEST_CASE("every bad Procfile line is reported") {
  auto pf = ParseProcfile("web ./server\nweb: a\nweb: b\nworker:\n", "Procfile");
  REQUIRE_FALSE(pf.ok());
  CHECK(pf.status().message() ==
        "Procfile:1:1: expected 'name: command'\n"
        "Procfile:3:1: process 'web' is declared twice\n"
        "Procfile:4:8: process 'worker' has no command");
}

TEST_CASE("a process file is checked without needing a process") {
  support::TempDir dir;
  CHECK(CheckProcessFiles(dir.path(), "app").ok());  // neither file: the build warns
  dir.WriteFile("relsupd.yaml", "build: {command: make}\n");
  CHECK(CheckProcessFiles(dir.path(), "app").ok());
  dir.WriteFile("Procfile", "web ./x\n");
  CHECK(CheckProcessFiles(dir.path(), "app").message() == "app/Procfile:1:1: expected 'name: command'");
  // A Procfile beside a relsupd.yaml with processes is not read.
  dir.WriteFile("relsupd.yaml", "processes: {web: {command: x}}\n");
  CHECK(CheckProcessFiles(dir.path(), "app").ok());
  dir.WriteFile("relsupd.yaml", "processes: {web: {command: x, sacle: 2}}\n");
  CHECK(CheckProcessFiles(dir.path(), "app").message() ==
        "app/relsupd.yaml:1:31: unknown key 'sacle' (did you mean 'scale'?)");
}

TEST_CASE("a socket a process type names must be one of the app's") {
  auto pf = ParseProcessYaml(
      "processes:\n"
      "  web: {command: x, sockets: [htp, admin]}\n"
      "  worker: {command: y, sockets: [queue]}\n",
      "relsupd.yaml");
  REQUIRE(pf.ok());
  const std::vector<SocketSpec> sockets = {{"http", "tcp://127.0.0.1:8080"},
                                           {"admin", "unix:/run/a.sock"}};
  Status s = CheckProcessSockets(*pf, sockets, "shop");
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message() ==
        "process 'web' uses socket 'htp', which app 'shop' does not have (its "
        "sockets: 'http' and 'admin'); did you mean 'http'?; fix 'sockets:' in "
        "relsupd.yaml or add the socket with 'ctl app apply'\n"
        "process 'worker' uses socket 'queue', which app 'shop' does not have "
        "(its sockets: 'http' and 'admin'); fix 'sockets:' in relsupd.yaml or add "
        "the socket with 'ctl app apply'");
  CHECK_THAT(CheckProcessSockets(*pf, {}, "shop").message(),
             Catch::Contains("(its sockets: none); add the socket"));
  auto fine = ParseProcessYaml("processes:\n  web: {command: x, sockets: [http]}\n", "f");
  REQUIRE(fine.ok());
  CHECK(CheckProcessSockets(*fine, sockets, "shop").ok());
}

namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(RELSUPD_SOURCE_DIR) + "/" + relative);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every key the relsupd.yaml parser accepts, as the docs name it.
std::vector<std::string> DocumentedKeyNames() {
  std::vector<std::string> names;
  for (std::string_view k : kAppFileKeys) names.emplace_back(k);
  for (std::string_view k : kBuildKeys) names.push_back("build." + std::string(k));
  for (std::string_view k : kProcessKeys) names.push_back("processes.TYPE." + std::string(k));
  for (std::string_view k : kReleaseKeys) names.push_back("release." + std::string(k));
  for (std::string_view k : kHealthKeys)
    if (k != "tcp" && k != "http" && k != "exec")  // as ready's, listed below
      names.push_back("processes.TYPE.health." + std::string(k));
  for (std::string_view k : kLimitsKeys) names.push_back("processes.TYPE.limits." + std::string(k));
  return names;
}

}  // namespace

TEST_CASE("every relsupd.yaml key is listed in the README and in relsupd-app(5)") {
  const std::string readme = ReadSource("README.md");
  const std::string man = ReadSource("packaging/man/relsupd-app.5.scd");
  for (const std::string& name : DocumentedKeyNames()) {
    INFO(name);
    CHECK_THAT(readme, Catch::Contains("| `" + name + "` |"));  // a row of the key table
    CHECK_THAT(man, Catch::Contains("\n*" + name + "*\n"));     // a term of KEYS
  }
  for (std::string_view k : kReadyKeys) {
    INFO(k);
    CHECK_THAT(readme, Catch::Contains("`{" + std::string(k) + ": "));
    CHECK_THAT(man, Catch::Contains("{*" + std::string(k) + "*: "));
  }
  // And the parser accepts what the docs list: a file with every key.
  auto all = ParseProcessYaml(
      "build: {command: make, output: dist}\n"
      "release: {command: ./migrate, timeout: 5m}\n"
      "processes:\n"
      "  web: {command: x, scale: 2, restart: never, stop_signal: INT, stop_timeout: 5s,\n"
      "        sockets: [http], ready: notify, ready_timeout: 30s, env: {A: b},\n"
      "        health: {http: 'http://127.0.0.1:8081/up', interval: 5s, timeout: 1s, failures: 2},\n"
      "        watchdog: 30s, limits: {memory: 512M, pids: 512, nofile: 65536, cpu: 1.5}}\n",
      "relsupd.yaml");
  INFO((all.ok() ? "" : all.status().message()));
  CHECK(all.ok());
}

TEST_CASE("Procfile lines become processes with defaults") {
  auto pf = ParseProcfile("# comment\nweb: ./server --port $PORT\n\nworker:  ./work\n", "Procfile");
  REQUIRE(pf.ok());
  CHECK(pf->processes.at("web").command == "./server --port $PORT");
  CHECK(pf->processes.at("worker").command == "./work");
  CHECK(pf->processes.at("worker").scale == 1);
  auto bad = ParseProcfile("web ./server\n", "Procfile");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "Procfile:1:1: expected 'name: command'");
  CHECK(ParseProcfile("web: a\nweb: b\n", "Procfile").status().message().find("twice") !=
        std::string::npos);
  CHECK(*ParseSignal("TERM") == 15);
  CHECK(*ParseSignal("SIGKILL") == 9);
  CHECK(*ParseSignal("1") == 1);
}

TEST_CASE("a release: line or key is the release phase, never a process type") {
  auto pf = ParseProcfile("release: ./manage.py migrate\nweb: ./server\n",
                          "Procfile");
  REQUIRE(pf.ok());
  CHECK(pf->processes.count("release") == 0);
  CHECK(pf->processes.size() == 1);
  CHECK(pf->release.command == "./manage.py migrate");
  CHECK(pf->release.timeout_ms == 10 * 60 * 1000);
  CHECK(ParseProcfile("release: a\nrelease: b\n", "Procfile")
            .status()
            .message() == "Procfile:2:1: process 'release' is declared twice");

  auto yaml = ParseProcessYaml(
      "release: {command: ./migrate, timeout: 90s}\nprocesses:\n  web: "
      "{command: x}\n",
      "relsupd.yaml");
  REQUIRE(yaml.ok());
  CHECK(yaml->release.command == "./migrate");
  CHECK(yaml->release.timeout_ms == 90'000);
  CHECK(ParseProcessYaml("release: ./migrate\n", "relsupd.yaml")
            ->release.command == "./migrate");
  auto err = [](const std::string& text) {
    return ParseProcessYaml(text, "relsupd.yaml").status().message();
  };
  CHECK(err("release: {timeout: 1m}\n") ==
        "relsupd.yaml:1:10: 'release' has no 'command'");
  CHECK(
      err("release: {command: x, timout: 1m}\n").find("unknown key 'timout'") !=
      std::string::npos);
  CHECK(err("release: [x]\n") ==
        "relsupd.yaml:1:10: 'release' must be a command or {command: CMD, "
        "timeout: 10m}");
  CHECK(
      err("release: {command: ' '}\n").find("'release' has an empty command") !=
      std::string::npos);
  CHECK(err("release: {command: x, timeout: 0s}\n")
            .find("'timeout' must be above 0") != std::string::npos);
  CHECK(err("processes:\n  release: {command: x}\n") ==
        "relsupd.yaml:2:3: 'release' is the release phase, not a process type: "
        "declare it "
        "as a top-level 'release:' key");

  // relsupd.yaml's release: beside a Procfile's processes.
  support::TempDir dir;
  dir.WriteFile("relsupd.yaml", "release: ./migrate\n");
  dir.WriteFile("Procfile", "web: ./server\n");
  auto loaded = LoadProcessFile(dir.path());
  REQUIRE(loaded.ok());
  CHECK(loaded->release.command == "./migrate");
  CHECK(loaded->processes.count("web") == 1);
  dir.WriteFile("Procfile", "release: ./only-this\n");
  dir.WriteFile("relsupd.yaml", "build: {command: make}\n");
  CHECK(LoadProcessFile(dir.path()).status().message() ==
        "Procfile declares no process");
}

TEST_CASE("the address a tcp or http ready check dials") {
  auto at = [](ReadyCheck c) { return ReadyCheckAddress(c); };
  auto tcp = at({ReadyKind::kTcp, 8080, ""});
  REQUIRE(tcp);
  CHECK(tcp->host == "127.0.0.1");
  CHECK(tcp->port == 8080);
  auto http = at({ReadyKind::kHttp, 0, "http://localhost:9000/health"});
  REQUIRE(http);
  CHECK(http->host == "localhost");
  CHECK(http->port == 9000);
  auto v6 = at({ReadyKind::kHttp, 0, "http://[::1]/"});
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 80);
  CHECK(at({ReadyKind::kHttp, 0, "http://10.1.2.3"})->port == 80);
  // What the probe itself refuses, and checks that dial nothing.
  CHECK_FALSE(at({ReadyKind::kHttp, 0, "http://example.com:80/"}));
  CHECK_FALSE(at({ReadyKind::kHttp, 0, "http://127.0.0.1:0/"}));
  CHECK_FALSE(at({ReadyKind::kHttp, 0, "http://127.0.0.1:x/"}));
  CHECK_FALSE(at({ReadyKind::kHttp, 0, "http://:80/"}));
  CHECK_FALSE(at({ReadyKind::kNotify, 0, ""}));
  CHECK_FALSE(at({ReadyKind::kNone, 0, ""}));
  CHECK_FALSE(at({ReadyKind::kExec, 0, "curl http://127.0.0.1:8080/"}));
}

TEST_CASE("which listeners a ready check's connect would reach") {
  ReadyAddress lo{"127.0.0.1", 8080};
  CHECK(ReachesListener(lo, "tcp://127.0.0.1:8080"));
  CHECK(ReachesListener(lo, "tcp://0.0.0.0:8080"));
  CHECK(ReachesListener(lo, "tcp://[::]:8080"));
  CHECK_FALSE(ReachesListener(lo, "tcp://127.0.0.1:8081"));
  CHECK_FALSE(ReachesListener(lo, "tcp://127.0.0.2:8080"));
  CHECK_FALSE(ReachesListener(lo, "tcp://10.0.0.5:8080"));
  CHECK_FALSE(ReachesListener(lo, "tcp://[::1]:8080"));
  CHECK_FALSE(ReachesListener(lo, "unix:/run/shop/http.sock"));
  // localhost, 0.0.0.0 and IPv4-mapped are 127.0.0.1 as a destination.
  CHECK(ReachesListener({"localhost", 8080}, "tcp://127.0.0.1:8080"));
  CHECK(ReachesListener({"0.0.0.0", 8080}, "tcp://127.0.0.1:8080"));
  CHECK(ReachesListener({"::ffff:127.0.0.1", 8080}, "tcp://127.0.0.1:8080"));
  // Any host reaches a wildcard listener on its port.
  CHECK(ReachesListener({"10.0.0.5", 8080}, "tcp://0.0.0.0:8080"));
  CHECK(ReachesListener({"10.0.0.5", 8080}, "tcp://10.0.0.5:8080"));
  CHECK(ReachesListener({"::1", 8080}, "tcp://[::]:8080"));
  CHECK(ReachesListener({"::1", 8080}, "tcp://[::1]:8080"));
  CHECK(ReachesListener({"::", 8080}, "tcp://[::1]:8080"));
  CHECK(ReachesListener({"::1", 8080}, "tcp://0.0.0.0:8080"));
  CHECK_FALSE(ReachesListener({"::1", 8080}, "tcp://127.0.0.1:8080"));
  CHECK_FALSE(ReachesListener({"example.com", 8080}, "tcp://0.0.0.0:8080"));
}

TEST_CASE("a tcp or http ready check aimed at a daemon-held socket is refused") {
  auto file = [](const std::string& ready) {
    auto f = ParseProcessYaml("processes:\n  worker: {command: w}\n  web:\n    command: x\n"
                              "    sockets: [http]\n    ready: " + ready + "\n",
                              "relsupd.yaml");
    REQUIRE(f.ok());
    return *f;
  };
  std::vector<SocketSpec> sockets = {{"admin", "unix:/run/shop/admin.sock"},
                                     {"http", "tcp://127.0.0.1:8080"}};
  Status s = CheckReadyAgainstSockets(file("{tcp: 8080}"), sockets);
  CHECK(s.code() == StatusCode::kFailedPrecondition);
  CHECK(s.message() ==
        "process 'web': ready check tcp 127.0.0.1:8080 would reach the daemon-held "
        "socket 'http' (tcp://127.0.0.1:8080), which always accepts; use 'ready: notify'");
  s = CheckReadyAgainstSockets(file("{http: \"http://localhost:8080/health\"}"), sockets);
  CHECK(s.message() ==
        "process 'web': ready check http http://localhost:8080/health would reach the "
        "daemon-held socket 'http' (tcp://127.0.0.1:8080), which always accepts; use "
        "'ready: notify'");
  std::vector<SocketSpec> wildcard = {{"http", "tcp://0.0.0.0:8080"}};
  CHECK_FALSE(CheckReadyAgainstSockets(file("{http: \"http://10.0.0.5:8080/\"}"), wildcard).ok());
  // Another port, another kind of check, or no sockets: fine.
  CHECK(CheckReadyAgainstSockets(file("{tcp: 9090}"), sockets).ok());
  CHECK(CheckReadyAgainstSockets(file("{http: \"http://127.0.0.1:9090/\"}"), wildcard).ok());
  CHECK(CheckReadyAgainstSockets(file("notify"), sockets).ok());
  CHECK(CheckReadyAgainstSockets(file("{exec: \"true\"}"), sockets).ok());
  CHECK(CheckReadyAgainstSockets(file("{tcp: 8080}"), {}).ok());
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("health, watchdog and limits are read with their defaults, and each bad value is named") {
  auto pf = ParseProcessYaml(
      "processes:\n"
      "  web:\n"
      "    command: x\n"
      "    health: {http: 'http://127.0.0.1:8081/up'}\n"
      "    watchdog: 30s\n"
      "    limits: {memory: 512M, pids: 512, nofile: 65536, cpu: 1.5}\n"
      "  worker: {command: y, health: {exec: ./check, interval: 1s, timeout: 500ms, failures: 1}}\n",
      "relsupd.yaml");
  REQUIRE(pf.ok());
  const ProcessSpec& web = pf->processes.at("web");
  CHECK(web.health.check == ReadyCheck{ReadyKind::kHttp, 0, "http://127.0.0.1:8081/up"});
  CHECK(web.health.interval_ms == 10'000);
  CHECK(web.health.timeout_ms == 2'000);
  CHECK(web.health.failures == 3);
  CHECK(web.watchdog_ms == 30'000);
  CHECK(web.limits == ProcessLimits{.memory_bytes = 512u << 20, .pids = 512, .nofile = 65536,
                                    .cpu = 1.5});
  const ProcessSpec& worker = pf->processes.at("worker");
  CHECK(worker.health.check.kind == ReadyKind::kExec);
  CHECK(worker.health.interval_ms == 1'000);
  CHECK(worker.health.timeout_ms == 500);
  CHECK(worker.health.failures == 1);
  CHECK(worker.watchdog_ms == 0);
  CHECK(worker.limits.empty());

  auto error = [](const std::string& lines) {
    auto r = ParseProcessYaml("processes:\n  web:\n    command: x\n" + lines, "relsupd.yaml");
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK(error("    health: {interval: 1s}\n") ==
        "relsupd.yaml:4:13: process 'web': 'health' needs exactly one of tcp, http or exec");
  CHECK(error("    health: {tcp: 1, exec: x}\n") ==
        "relsupd.yaml:4:13: process 'web': 'health' needs exactly one of tcp, http or exec");
  CHECK(error("    health: {http: 'ftp://x'}\n") ==
        "relsupd.yaml:4:20: 'http' must be an http:// URL");
  CHECK(error("    health: {exec: ' '}\n") == "relsupd.yaml:4:20: process 'web': 'exec' is empty");
  CHECK(error("    health: {tcp: 1, interval: 10ms}\n") ==
        "relsupd.yaml:4:32: process 'web': 'interval' must be at least 100ms");
  CHECK(error("    health: {tcp: 1, timeout: 0s}\n") ==
        "relsupd.yaml:4:31: process 'web': 'timeout' must be above 0");
  CHECK_THAT(error("    health: {tcp: 1, failures: 0}\n"), Catch::Contains("'failures'"));
  CHECK_THAT(error("    health: {tcp: 1, retries: 3}\n"), Catch::Contains("unknown key 'retries'"));
  CHECK(error("    health: /up\n") ==
        "relsupd.yaml:4:13: process 'web': 'health' must be {http: URL | tcp: PORT | exec: CMD, "
        "interval: 10s, timeout: 2s, failures: 3}");
  CHECK(error("    watchdog: 50ms\n") ==
        "relsupd.yaml:4:15: process 'web': 'watchdog' must be at least 100ms");
  CHECK(error("    limits: {memory: lots}\n") ==
        "relsupd.yaml:4:22: 'lots' is not a size (no number; use e.g. 512M, 1G or 65536)");
  CHECK_THAT(error("    limits: {cpu: 0}\n"), Catch::Contains("'cpu' must be a number of cores"));
  CHECK_THAT(error("    limits: {cpu: fast}\n"), Catch::Contains("'cpu' must be a number of cores"));
  CHECK_THAT(error("    limits: {nofile: 8}\n"), Catch::Contains("'nofile'"));
  CHECK_THAT(error("    limits: {pids: 0}\n"), Catch::Contains("'pids'"));
  CHECK_THAT(error("    limits: {memroy: 1G}\n"),
             Catch::Contains("unknown key 'memroy' (did you mean 'memory'?)"));
  CHECK(error("    limits: 1G\n") ==
        "relsupd.yaml:4:13: process 'web': 'limits' must be {memory: 512M, pids: 512, "
        "nofile: 65536, cpu: 1.5}");
}

TEST_CASE("a health check aimed at a daemon-held socket is refused, as a ready check is") {
  auto pf = ParseProcessYaml(
      "processes:\n  web: {command: x, health: {http: 'http://127.0.0.1:8080/up'}}\n",
      "relsupd.yaml");
  REQUIRE(pf.ok());
  Status s = CheckReadyAgainstSockets(*pf, {SocketSpec{"http", "tcp://0.0.0.0:8080"}});
  CHECK(s.message() ==
        "process 'web': health check http http://127.0.0.1:8080/up would reach the daemon-held socket "
        "'http' (tcp://0.0.0.0:8080), which always accepts; check a port of the instance's own "
        "(e.g. an admin port), or use 'health: {exec: ...}' or 'watchdog:'");
  CHECK(CheckReadyAgainstSockets(*pf, {SocketSpec{"http", "tcp://0.0.0.0:8081"}}).ok());
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("an exec health check runs at most once a second, and nofile stays under fs.nr_open") {
  auto error = [](const std::string& lines) {
    auto r = ParseProcessYaml("processes:\n  web:\n    command: x\n" + lines, "relsupd.yaml");
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  CHECK(error("    health: {exec: ./check, interval: 500ms}\n") ==
        "relsupd.yaml:4:39: process 'web': an exec health check's 'interval' must be at least 1s");
  CHECK(ParseProcessYaml("processes:\n  web: {command: x, health: {tcp: 1, interval: 200ms}}\n",
                         "relsupd.yaml")
            .ok());
  CHECK_THAT(error("    limits: {nofile: 2000000}\n"), Catch::Contains("'nofile'"));
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("metrics_listen is off by default and takes HOST:PORT") {
  CHECK(ParseDaemonConfig("", "f")->metrics_listen.empty());
  CHECK(ParseDaemonConfig("metrics_listen: \"\"\n", "f")->metrics_listen.empty());
  CHECK(ParseDaemonConfig("metrics_listen: 127.0.0.1:9100\n", "f")->metrics_listen ==
        "tcp://127.0.0.1:9100");
  CHECK(ParseDaemonConfig("metrics_listen: \"[::1]:9100\"\n", "f")->metrics_listen ==
        "tcp://[::1]:9100");
  for (const char* bad : {"metrics_listen: nonsense\n", "metrics_listen: 127.0.0.1\n",
                          "metrics_listen: unix:/run/x.sock\n"}) {
    INFO(bad);
    auto r = ParseDaemonConfig(bad, "f");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(),
               Catch::Contains("'metrics_listen' must be HOST:PORT (e.g. 127.0.0.1:9100)"));
  }
}

TEST_CASE("process file: too many types or instances in all are refused") {
  std::string yaml = "processes:\n";
  std::string procfile;
  for (int i = 0; i <= 100; ++i) {
    yaml += "  t" + std::to_string(i) + ": {command: x, scale: 0}\n";
    procfile += "t" + std::to_string(i) + ": x\n";
  }
  auto many = ParseProcessYaml(yaml, "relsupd.yaml");
  REQUIRE_FALSE(many.ok());
  CHECK(many.status().message() == "relsupd.yaml: 101 process types, more than the 100 allowed");
  auto lines = ParseProcfile(procfile, "Procfile");
  REQUIRE_FALSE(lines.ok());
  CHECK(lines.status().message() == "Procfile: 101 process types, more than the 100 allowed");
  auto big = ParseProcessYaml(
      "processes:\n  a: {command: x, scale: 10000}\n  b: {command: x, scale: 1}\n",
      "relsupd.yaml");
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().message() ==
        "relsupd.yaml: the scales add up to 10001 instances, more than the 10000 an app may run");
  CHECK(ParseProcessYaml("processes:\n  a: {command: x, scale: 10000}\n", "relsupd.yaml").ok());
}

}  // namespace
}  // namespace relsupd
