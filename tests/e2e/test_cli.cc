// E2E: `relsupd ctl` as an operator and a script see it: exit codes
// (0 ok, 1 refused, 2 usage, 3 unreachable), messages that name the bad
// input, idempotent apply, --json output, --help and --version.
#include <algorithm>
#include <catch2/catch.hpp>
#include <regex>
#include <sstream>

#include "tests/e2e/harness.h"

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
    if (line.rfind("Subcommands:", 0) == 0 ||
        line.rfind("SUBCOMMANDS:", 0) == 0) {
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

}  // namespace

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
    CHECK_THAT(r.err, Catch::Contains(socket));
    CHECK(r.out.empty());
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
      {},                                        // no verb
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

}  // namespace relsupd::e2e
