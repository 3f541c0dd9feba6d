// Operating a live release end to end (issue 14): health checks after
// ready, the app watchdog, the memory limit's RSS watch, nofile, and the
// usage figures of `ps` and its rows shape (`columns`). The real daemon
// runs real python3 apps; every wait is for a state in `ps`, never for a
// time.
#include <signal.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/run/hello_stage.h"
#include "tests/run/run_fixture.h"
#include "tests/support/failure.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {
namespace {

using release_test::File;

// An HTTP server on 127.0.0.1:PORT: GET /health answers 500 while the file
// MARK exists, 200 otherwise; every other path 200.
constexpr char kHealthServer[] =
    "import http.server, os, sys\n"
    "port, mark = int(sys.argv[1]), sys.argv[2]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        bad = self.path == '/health' and os.path.exists(mark)\n"
    "        self.send_response(500 if bad else 200)\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b'ok')\n"
    "        if self.path == '/health':\n"
    "            print('health', 500 if bad else 200, flush=True)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "print('serving', flush=True)\n"
    "http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n";

// Sends READY=1, then WATCHDOG=1 every 100 ms until the file MARK exists;
// writes its WATCHDOG_USEC and WATCHDOG_PID to MARK.env first.
constexpr char kWatchdogApp[] =
    "import os, socket, sys, time\n"
    "mark = sys.argv[1]\n"
    "with open(mark + '.env', 'w') as f:\n"
    "    f.write(os.environ.get('WATCHDOG_USEC', '-') + ' ' + os.environ.get('WATCHDOG_PID', '-'))\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
    "while True:\n"
    "    if not os.path.exists(mark):\n"
    "        s.sendto(b'WATCHDOG=1', os.environ['NOTIFY_SOCKET'])\n"
    "    time.sleep(0.1)\n";

void Touch(const std::string& path) {
  std::ofstream out(path);
  if (!out) support::Fail("cannot create " + path);
}

const std::string& Text(const Json& j) { return j.get_ref<const std::string&>(); }

// The first exit of `row` whose cause is `cause`; null when none.
Json ExitOf(const Json& row, const std::string& cause) {
  for (const Json& e : row["exits"])
    if (e["cause"] == cause) return e;
  return Json();
}

TEST_CASE("health: an app whose /health fails after ready is restarted after 3 failures, with that reason") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string mark = marks.path + "/unhealthy";
  const int port = FreePort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  Deploy(stage, {File("server.py", kHealthServer),
                 File("relsupd.yaml",
                      "processes:\n"
                      "  web:\n"
                      "    command: python3 server.py " + std::to_string(port) + " " + mark + "\n"
                      "    ready: {http: '" + url + "/'}\n"
                      "    health: {http: '" + url + "/health', interval: 100ms, timeout: 1s, failures: 3}\n")});
  const Json ready = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  const pid_t first = Row(ready, "web.1")["pid"];
  // Healthy checks pass, and the instance stays.
  REQUIRE(WaitLog(stage, "health 200"));
  CHECK(Row(Ps(stage), "web.1")["pid"] == first);

  Touch(mark);
  const Json after = WaitPs(stage, [&](const Json& p) {
    return !ExitOf(Row(p, "web.1"), "health").is_null();
  }, 20'000, "a health exit");
  ::unlink(mark.c_str());
  const Json exit = ExitOf(Row(after, "web.1"), "health");
  INFO(exit.dump());
  CHECK(Text(exit["exit"]) == "health check failed: GET " + url +
                                  "/health: HTTP 500 (3 times in a row): stopped (SIGTERM)");
  CHECK_FALSE(Alive(first));
  // Restarted as a crash: a new process, ready again, and healthy now.
  const Json back = WaitPs(stage, [&](const Json& p) {
    return AllIn(p, "web", "ready", 1) && Row(p, "web.1")["pid"] != first;
  });
  CHECK(Row(back, "web.1")["restarts"].get<int>() >= 1);
  // The app's log says why its process was stopped.
  CHECK(WaitLog(stage, "relsupd: health check failed: GET " + url + "/health: HTTP 500"));
  // So does `ps` (the human table's LAST EXIT, or an earlier exit).
  const Json json_ps = stage.CtlJson({"ps", "shop"});
  CHECK(ExitOf(json_ps[0], "health")["exit"] == exit["exit"]);
}

TEST_CASE("health: an exec check that hangs is killed at its timeout and counts as a failure, and a check leaves nothing behind") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string mark = marks.path + "/hang";
  const std::string ran = marks.path + "/ran";
  DeployYaml(stage,
             "processes:\n"
             "  worker:\n"
             "    command: sleep 1000\n"
             "    health: {exec: 'if [ -e " + mark + " ]; then sleep 1000; fi', interval: 1s, "
             "timeout: 300ms, failures: 2}\n"
             // A check that starts a child each time: what it leaves in its
             // group is killed when it ends.
             "  leaver:\n"
             "    command: sleep 1000\n"
             "    health: {exec: 'echo x >> " + ran + "; sleep 7771 >/dev/null 2>&1 & true', "
             "interval: 1s}\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "worker", "ready", 1); });
  Touch(mark);
  const Json after = WaitPs(stage, [&](const Json& p) {
    return !ExitOf(Row(p, "worker.1"), "health").is_null();
  }, 20'000, "a health exit");
  ::unlink(mark.c_str());
  CHECK(Text(ExitOf(Row(after, "worker.1"), "health")["exit"]) ==
        "health check failed: exec 'if [ -e " + mark +
            " ]; then sleep 1000; fi': no answer within 300ms (2 times in a row): stopped (SIGTERM)");
  // No check process is left behind, of either type.
  CHECK(support::WaitUntil(
      [&] { return PidsWithCmdline("then sleep 1000").empty(); }, 10'000));
  REQUIRE(support::WaitUntil([&] { return Slurp(ran).size() >= 4; }, 20'000));
  CHECK(support::WaitUntil([&] { return PidsWithCmdline("sleep 7771").empty(); }, 10'000));
  CHECK(Row(Ps(stage), "leaver.1")["restarts"] == 0);
}

TEST_CASE("health: a tcp or http check aimed at a daemon-held socket is refused at release create") {
  HelloStage h;
  std::string file = h.stage.Artifact(
      "bad.tar.gz",
      {File("relsupd.yaml", "processes:\n"
                            "  web:\n"
                            "    command: ./bin/hello\n"
                            "    sockets: [http]\n"
                            "    ready: notify\n"
                            "    health: {tcp: " + std::to_string(h.port) + "}\n"),
       File("bin/hello", Slurp(RELSUPD_HELLO_BIN), 0755)});
  const std::string id = h.stage.Import(file)["id"].get<std::string>();
  e2e::ProcResult r = h.stage.Ctl({"release", "create", "shop", "--build", id});
  INFO(r.err);
  CHECK(r.exit_code() == 1);
  CHECK_THAT(r.err, Catch::Contains("process 'web': health check tcp 127.0.0.1:" +
                                    std::to_string(h.port) +
                                    " would reach the daemon-held socket 'http'"));
}

TEST_CASE("watchdog: WATCHDOG_USEC and WATCHDOG_PID are set, and an instance that stops sending gets SIGABRT and restarts with reason watchdog") {
  Stage stage(FastConfig());
  WritableDir marks;
  const std::string mark = marks.path + "/stop-pinging";
  Deploy(stage, {File("app.py", kWatchdogApp),
                 File("relsupd.yaml",
                      "processes:\n"
                      "  web:\n"
                      "    command: python3 app.py " + mark + "\n"
                      "    ready: notify\n"
                      "    watchdog: 1s\n")});
  const Json ready = WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  const pid_t pid = Row(ready, "web.1")["pid"];
  REQUIRE(support::WaitUntil([&] { return !Slurp(mark + ".env").empty(); }, 10'000));
  CHECK(Slurp(mark + ".env") == "1000000 " + std::to_string(pid));

  Touch(mark);
  const Json after = WaitPs(stage, [&](const Json& p) {
    return !ExitOf(Row(p, "web.1"), "watchdog").is_null();
  }, 20'000, "a watchdog exit");
  ::unlink(mark.c_str());
  CHECK(Text(ExitOf(Row(after, "web.1"), "watchdog")["exit"]) ==
        "watchdog: no WATCHDOG=1 within 1s: stopped (SIGABRT)");
  CHECK_FALSE(Alive(pid));
  // It pings again once restarted, and stays.
  const Json back = WaitPs(stage, [&](const Json& p) {
    return AllIn(p, "web", "ready", 1) && Row(p, "web.1")["pid"] != pid;
  });
  CHECK(WaitLog(stage, "relsupd: watchdog: no WATCHDOG=1 within 1s"));
}

TEST_CASE("limits: a process that grows past limits: {memory: 64M} is restarted with the memory reason, and ps says how the limit is kept") {
  Stage stage(FastConfig());
  // Grows by 8 MiB of touched memory every 50 ms, up to 400 MiB.
  DeployYaml(stage,
             "processes:\n"
             "  hog:\n"
             "    command: >-\n"
             "      python3 -c \"import time; b = [];\n"
             "      [(b.append(b'x' * (8 << 20)), time.sleep(0.05)) for _ in range(50)];\n"
             "      time.sleep(1000)\"\n"
             "    limits: {memory: 64M}\n");
  const Json after = WaitPs(stage, [&](const Json& p) {
    return !ExitOf(Row(p, "hog.1"), "memory-limit").is_null();
  }, 30'000, "a memory-limit exit");
  const std::string exit = Text(ExitOf(Row(after, "hog.1"), "memory-limit")["exit"]);
  INFO(exit);
  CHECK_THAT(exit, Catch::StartsWith("memory limit ("));
  CHECK_THAT(exit, Catch::Contains(" MiB > 64 MiB): stopped (SIGTERM)"));
  const Json row = Row(after, "hog.1");
  CHECK(row["memory_limit_bytes"] == 64 << 20);
  CHECK(row["memory_limit_by"] == "rss-watch");  // this machine: no memory controller
  e2e::ProcResult table = stage.Ctl({"ps", "shop"});
  CHECK_THAT(table.out, Catch::Contains("MEM"));
  CHECK_THAT(table.out,
             Catch::Contains("Memory limits: an RSS watch every 2s (no cgroup memory controller)"));
}

TEST_CASE("limits: the RSS watch counts pages a pre-forked server shares once (PSS), while ps shows the resident sets") {
  Stage stage(FastConfig());
  // 96 MiB touched, then 3 forked children share it: the resident sets add
  // up to about 4 x 96 MiB, the proportional sets to about 96 MiB.
  Deploy(stage, {File("prefork.py",
                      "import os, time\n"
                      "b = b'x' * (96 << 20)\n"
                      "for _ in range(3):\n"
                      "    if os.fork() == 0:\n"
                      "        break\n"
                      "time.sleep(1000)\n"),
                 File("relsupd.yaml",
                      "processes:\n"
                      "  web:\n"
                      "    command: python3 prefork.py\n"
                      "    limits: {memory: 200M}\n")});
  // A sample that saw all four processes (its limit check ran with it).
  const Json ps = WaitPs(stage, [](const Json& p) {
    const Json r = Row(p, "web.1");
    return r.is_object() && r["memory_bytes"].is_number() &&
           r["memory_bytes"].get<double>() > 300.0 * (1 << 20);
  }, 30'000, "the four processes' resident sets in ps");
  INFO(ps.dump());
  CHECK(Row(ps, "web.1")["restarts"] == 0);
  CHECK(Row(ps, "web.1")["state"] == "ready");
  CHECK(ExitOf(Row(ps, "web.1"), "memory-limit").is_null());
}

TEST_CASE("usage: ps --json memory and CPU of a busy process are within 20% of /proc's, and nofile is set") {
  Stage stage(FastConfig());
  // 48 MiB held and one core kept busy.
  Deploy(stage, {File("busy.py", "b = b'x' * (48 << 20)\nwhile True:\n    pass\n"),
                 File("relsupd.yaml",
                      "processes:\n"
                      "  busy:\n"
                      "    command: python3 busy.py\n"
                      "    limits: {nofile: 1000}\n")});
  Json ps = WaitPs(stage, [](const Json& p) {
    const Json r = Row(p, "busy.1");
    return r.is_object() && r["cpu_seconds"].is_number() && r["cpu_seconds"].get<double>() >= 2.0;
  }, 30'000, "2 s of CPU in ps");
  const pid_t pid = Row(ps, "busy.1")["pid"];
  // A fresh sample, compared with /proc at once.
  const double seen = Row(ps, "busy.1")["cpu_seconds"];
  ps = WaitPs(stage, [&](const Json& p) { return Row(p, "busy.1")["cpu_seconds"] != seen; });
  const double proc_cpu = static_cast<double>(CpuMs(pid)) / 1000.0;
  const double rss = std::stod(StatusField(pid, "VmRSS")) * 1024.0;
  const Json row = Row(ps, "busy.1");
  INFO(row.dump());
  const double cpu = row["cpu_seconds"];
  const double mem = row["memory_bytes"];
  CHECK(cpu == Approx(proc_cpu).epsilon(0.2));
  CHECK(mem == Approx(rss).epsilon(0.2));
  CHECK(mem > 48.0 * (1 << 20));
  CHECK(row["cpu_percent"].get<double>() > 10.0);
  CHECK_FALSE(row.contains("memory_limit_bytes"));
  // limits: nofile is the process's RLIMIT_NOFILE, soft and hard.
  const std::string limits = Slurp("/proc/" + std::to_string(pid) + "/limits");
  CHECK_THAT(limits, Catch::Matches("(.|\n)*Max open files +1000 +1000 +files(.|\n)*"));
}

}  // namespace
}  // namespace relsupd::run_test

namespace relsupd::run_test {
namespace {

// The families and samples of a metrics text, as the reference parser
// (python3-prometheus-client's text_string_to_metric_families) reads it:
// one line per sample, "FAMILY|TYPE|NAME|{labels as JSON}|VALUE"; throws
// when the parser refuses the text.
std::vector<std::string> ParsedByReference(const std::string& text) {
  support::TempDir dir("relsupd-metrics");
  const std::string in = dir.WriteFile("metrics.txt", text);
  const std::string script = dir.WriteFile(
      "parse.py",
      "import json, sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
      "    for s in f.samples:\n"
      "        print('|'.join([f.name, f.type, s.name, json.dumps(s.labels, sort_keys=True),\n"
      "                        repr(s.value)]))\n");
  support::ProcResult r = support::RunProcess({"/usr/bin/python3", script, in});
  if (r.exit_code() != 0) support::Fail("the reference parser refused the text: " + r.err);
  std::vector<std::string> lines;
  std::istringstream out(r.out);
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  return lines;
}

bool Has(const std::vector<std::string>& samples, const std::string& prefix) {
  for (const std::string& s : samples)
    if (s.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string Sample(const std::vector<std::string>& samples, const std::string& prefix) {
  for (const std::string& s : samples)
    if (s.rfind(prefix, 0) == 0) return s;
  return "";
}

TEST_CASE("metrics: a logs directory no app is behind is not listed as an app") {
  Stage stage(FastConfig());
  DeployYaml(stage, "processes:\n  web: {command: sh -c 'echo up; exec sleep 1000'}\n");
  REQUIRE(WaitLog(stage, "up"));
  stage.Stop();
  // An app deleted with its logs kept, or a directory made by hand.
  const std::string ghost = stage.state() + "/logs/ghost";
  std::filesystem::create_directories(ghost);
  support::WriteText(ghost + "/current.log", "");
  stage.Restart();
  WaitPs(stage, [](const Json& p) { return AllIn(p, "web", "ready", 1); });
  e2e::ProcResult text = stage.Ctl({"metrics"});
  REQUIRE(text.exit_code() == 0);
  INFO(text.out);
  CHECK_THAT(text.out, !Catch::Contains("ghost"));
  // The running app is listed though it wrote nothing since the start.
  CHECK_THAT(text.out, Catch::Contains("relsupd_log_lines_dropped_total{app=\"shop\"} 0"));
}

TEST_CASE("metrics: ctl metrics and GET /metrics are read by the reference parser, with the right counts after known restarts") {
  const int http_port = FreePort();
  Stage stage(FastConfig("metrics_listen: 127.0.0.1:" + std::to_string(http_port) + "\n"));
  WritableDir marks;
  const std::string mark = marks.path + "/crash";
  // worker.1 exits 3 twice (a marker file counts), then stays up.
  DeployYaml(stage,
             "processes:\n"
             "  web: {command: sleep 1000, scale: 2}\n"
             "  worker:\n"
             "    command: >-\n"
             "      sh -c 'n=$(cat " + mark + " 2>/dev/null || echo 0); echo run $n;\n"
             "      if [ $n -lt 2 ]; then echo $((n+1)) > " + mark + "; exit 3; fi; exec sleep 1000'\n");
  WaitPs(stage, [](const Json& p) {
    return AllIn(p, "web", "ready", 2) && AllIn(p, "worker", "ready", 1) &&
           Row(p, "worker.1")["restarts"] == 2;
  });
  REQUIRE(WaitLog(stage, "run 2"));
  // A request that fails, for the request counter.
  CHECK(stage.Ctl({"ps", "nosuchapp"}).exit_code() != 0);
  // Usage figures come with the next sample.
  WaitPs(stage, [](const Json& p) { return Row(p, "web.1")["memory_bytes"].is_number(); });

  e2e::ProcResult text = stage.Ctl({"metrics"});
  REQUIRE(text.exit_code() == 0);
  const std::vector<std::string> m = ParsedByReference(text.out);
  INFO(text.out);
  CHECK(Has(m, "relsupd_build_info|gauge|relsupd_build_info|{\"version\": \""));
  CHECK(Sample(m, "relsupd_instances|gauge|relsupd_instances|"
                  "{\"app\": \"shop\", \"state\": \"ready\", \"type\": \"web\"}") ==
        "relsupd_instances|gauge|relsupd_instances|{\"app\": \"shop\", \"state\": \"ready\", "
        "\"type\": \"web\"}|2.0");
  CHECK(Sample(m, "relsupd_instance_restarts|counter|relsupd_instance_restarts_total|"
                  "{\"app\": \"shop\", \"process\": \"worker.1\"}")
            .ends_with("|2.0"));
  CHECK(Sample(m, "relsupd_instance_restarts|counter|relsupd_instance_restarts_total|"
                  "{\"app\": \"shop\", \"process\": \"web.1\"}")
            .ends_with("|0.0"));
  CHECK(Sample(m, "relsupd_instance_exits|counter|relsupd_instance_exits_total|"
                  "{\"app\": \"shop\", \"process\": \"worker.1\", \"reason\": \"exited\"}")
            .ends_with("|2.0"));
  CHECK(Has(m, "relsupd_instance_memory_bytes|gauge|relsupd_instance_memory_bytes|"
               "{\"app\": \"shop\", \"process\": \"web.1\"}|"));
  CHECK(Has(m, "relsupd_instance_cpu_seconds|counter|relsupd_instance_cpu_seconds_total|"
               "{\"app\": \"shop\", \"process\": \"web.1\"}|"));
  CHECK(Sample(m, "relsupd_activations|counter|relsupd_activations_total|"
                  "{\"app\": \"shop\", \"outcome\": \"activated\"}")
            .ends_with("|1.0"));
  CHECK(Sample(m, "relsupd_release_active|gauge|relsupd_release_active|"
                  "{\"app\": \"shop\", \"release\": \"v1\"}")
            .ends_with("|1.0"));
  // "run 0", "run 1", "run 2": one line per start of worker.1.
  CHECK(Sample(m, "relsupd_log_lines|counter|relsupd_log_lines_total|"
                  "{\"app\": \"shop\", \"stream\": \"out\"}") ==
        "relsupd_log_lines|counter|relsupd_log_lines_total|{\"app\": \"shop\", \"stream\": "
        "\"out\"}|3.0");
  CHECK(Sample(m, "relsupd_log_lines_dropped|counter|relsupd_log_lines_dropped_total|"
                  "{\"app\": \"shop\"}")
            .ends_with("|0.0"));
  CHECK(Has(m, "relsupd_control_requests|counter|relsupd_control_requests_total|"
               "{\"method\": \"ps\", \"outcome\": \"ok\"}|"));
  CHECK(Sample(m, "relsupd_control_requests|counter|relsupd_control_requests_total|"
                  "{\"method\": \"ps\", \"outcome\": \"not-found\"}")
            .ends_with("|1.0"));

  // The same families over HTTP, with the format's content type.
  const std::string reply = support::HttpRequest(
      http_port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  INFO(reply);
  REQUIRE(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK_THAT(reply, Catch::Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  const std::vector<std::string> h = ParsedByReference(reply.substr(reply.find("\r\n\r\n") + 4));
  CHECK(Has(h, "relsupd_instances|gauge|relsupd_instances|"));
  CHECK(Has(h, "relsupd_release_active|gauge|relsupd_release_active|"));
  // Anything but GET /metrics is refused, and the daemon serves on.
  CHECK(support::HttpRequest(http_port, "GET /other HTTP/1.1\r\n\r\n")
            .rfind("HTTP/1.1 404", 0) == 0);
  CHECK(support::HttpRequest(http_port, "POST /metrics HTTP/1.1\r\n\r\n")
            .rfind("HTTP/1.1 405", 0) == 0);
  CHECK(support::HttpRequest(http_port, "nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(support::HttpRequest(http_port, std::string(10'000, 'a')).rfind("HTTP/1.1 400", 0) == 0);
  CHECK(stage.Ctl({"ps", "shop"}).exit_code() == 0);
}

TEST_CASE("ps and status with columns: rows of arrays holding the values the objects have (null for a key left out), in the order asked, and bad columns are refused") {
  Stage stage(FastConfig());
  // web has a memory limit (memory_limit_bytes and _by present), worker
  // none (both left out of its objects); worker exits once (last_exit).
  DeployYaml(stage,
             "processes:\n"
             "  web:\n"
             "    command: sleep 1000\n"
             "    limits: {memory: 200M}\n"
             "  worker:\n"
             "    command: sleep 1000\n");
  WaitPs(stage, [](const Json& p) { return AllIn(p, "", "ready", 2); });
  const pid_t worker = Row(Ps(stage), "worker.1")["pid"].get<pid_t>();
  ::kill(worker, SIGKILL);
  const Json objects = WaitPs(stage, [&](const Json& p) {
    return AllIn(p, "", "ready", 2) && Row(p, "worker.1")["pid"] != worker;
  });
  // Every key any row has, in an order of our own, and one no row has.
  std::vector<std::string> names = {"stopping_ms", "process", "app"};
  for (const Json& row : objects)
    for (const auto& [key, value] : row.items())
      if (std::find(names.begin(), names.end(), key) == names.end()) names.push_back(key);
  REQUIRE(std::find(names.begin(), names.end(), "memory_limit_by") != names.end());
  REQUIRE(std::find(names.begin(), names.end(), "exits") != names.end());
  const Json reply =
      support::Call(stage.socket(), "ps", {{"app", stage.app()}, {"columns", names}});
  INFO(reply.dump());
  REQUIRE(reply.is_object());
  CHECK(reply.size() == 2);
  CHECK(reply["columns"] == Json(names));
  const Json& rows = reply["rows"];
  REQUIRE(rows.is_array());
  REQUIRE(rows.size() == objects.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    REQUIRE(rows[i].is_array());
    REQUIRE(rows[i].size() == names.size());
    const Json object = Row(objects, rows[i][1].get<std::string>());
    REQUIRE(object.is_object());
    for (size_t c = 0; c < names.size(); ++c) {
      INFO(names[c]);
      const Json& cell = rows[i][c];
      // What moves between the two calls: a number (or null before a
      // sample) in both.
      if (names[c] == "uptime_ms" || names[c] == "memory_bytes" ||
          names[c] == "cpu_seconds" || names[c] == "cpu_percent") {
        CHECK((cell.is_number() || cell.is_null()));
        continue;
      }
      CHECK(cell == object.value(names[c], Json()));
    }
  }
  // The same rows the table shows, whichever shape: worker.1's last exit,
  // web.1's limit.
  const std::string table = stage.CtlOk({"ps", "shop"});
  CHECK_THAT(table, Catch::Contains("signal KILL"));
  CHECK_THAT(table, Catch::Contains("Memory limits: "));
  // --json: the objects, as without columns.
  const Json json = stage.CtlJson({"ps", "shop"});
  REQUIRE(json.is_array());
  CHECK(json[0].is_object());
  CHECK(json[0].contains("exits"));

  for (const Json& bad : {Json("app"), Json::array(), Json::array({"app", 3}),
                          Json::array({"app", "nope"}), Json(std::vector<std::string>(65, "app"))}) {
    INFO(bad.dump());
    const Json r = support::CallRaw(stage.socket(), "ps", {{"app", stage.app()}, {"columns", bad}});
    REQUIRE(r.contains("error"));
    CHECK(r["error"]["code"] == -32602);
    CHECK_THAT(r["error"]["message"].get<std::string>(), Catch::Contains("'columns'"));
  }
  const Json nope = support::CallRaw(stage.socket(), "ps", {{"columns", {"app", "nope"}}});
  CHECK_THAT(nope["error"]["message"].get<std::string>(), Catch::Contains("no field 'nope'"));
  // A peer's long name is quoted in part: the error is not as large as it.
  const Json huge = support::CallRaw(
      stage.socket(), "ps", {{"columns", {std::string(500'000, 'x')}}, {std::string(100'000, 'k'), 1}});
  CHECK(huge["error"]["message"].get<std::string>().size() < 300);
  const Json huge_app = support::CallRaw(stage.socket(), "ps", {{"app", std::string(500'000, 'a')}});
  CHECK(huge_app["error"]["message"].get<std::string>().size() < 300);
  const Json huge_column = support::CallRaw(
      stage.socket(), "ps", {{"app", stage.app()}, {"columns", {std::string(500'000, 'x')}}});
  const std::string message = huge_column["error"]["message"].get<std::string>();
  CHECK_THAT(message, Catch::Contains("no field '" + std::string(64, 'x') + "...'"));
  CHECK(message.size() < 400);

  // status with columns: its processes in the same shape, the rest as
  // without; one app or all of them.
  const Json plain = support::Call(stage.socket(), "status", {{"app", stage.app()}});
  const Json one = support::Call(stage.socket(), "status",
                                 {{"app", stage.app()}, {"columns", {"process", "type", "state"}}});
  const Json all = support::Call(stage.socket(), "status", {{"columns", {"process", "type", "state"}}});
  INFO(one.dump());
  REQUIRE(all.is_array());
  REQUIRE(all.size() == 1);
  CHECK(all[0] == one);
  REQUIRE(plain["processes"].is_array());
  REQUIRE(plain["processes"].size() == 2);
  CHECK(one["processes"]["columns"] == Json({"process", "type", "state"}));
  const Json& status_rows = one["processes"]["rows"];
  REQUIRE(status_rows.size() == plain["processes"].size());
  for (const Json& object : plain["processes"]) {
    bool found = false;
    for (const Json& row : status_rows)
      found = found || row == Json({object["process"], object["type"], object["state"]});
    CHECK(found);
  }
  Json rest = one;
  rest.erase("processes");
  Json plain_rest = plain;
  plain_rest.erase("processes");
  CHECK(rest == plain_rest);
  const Json bad_status =
      support::CallRaw(stage.socket(), "status", {{"app", stage.app()}, {"columns", {"nope"}}});
  CHECK_THAT(bad_status["error"]["message"].get<std::string>(), Catch::Contains("no field 'nope'"));
}

}  // namespace
}  // namespace relsupd::run_test
