// Tests of what relsupd ships besides the binary: the systemd unit, the
// sysusers.d and tmpfiles.d entries, the daemon config, the example app spec
// and the Debian package (CPack).
//
// Each test runs the real tools (systemd-analyze, systemd-sysusers,
// systemd-tmpfiles, cpack, dpkg-deb, the built relsupd) as child processes
// in a temporary directory under /tmp. A missing systemd or dpkg tool skips
// its test with a warning; anything else missing is a failure.

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config/app_spec.h"
#include "daemon/config/daemon_config.h"
#include "tests/support/daemon_process.h"
#include "tests/support/fs.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using relsupd::support::ReadText;
using relsupd::support::TempDir;
using relsupd::support::WriteText;

const std::string kSourceDir = RELSUPD_SOURCE_DIR;
const std::string kBinaryDir = RELSUPD_BINARY_DIR;
const std::string kRelsupd = RELSUPD_BIN;
const std::string kCpack = RELSUPD_CPACK;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The full path of `name` on $PATH, or "" when it is not there.
std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  for (const char* dir : {"/usr/sbin", "/sbin"}) {
    std::string candidate = std::string(dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// The full path of `name` on $PATH, or "" after a WARN that `check` is
// skipped because `name` is not installed.
std::string ProgramOrSkip(const std::string& name, const std::string& check) {
  const std::string path = FindProgram(name);
  if (path.empty()) WARN(name << " is not installed: skipping " << check);
  return path;
}

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or the deadline
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved
};

std::string Describe(const std::vector<std::string>& argv, const RunResult& r) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return "$ " + cmd + "\nexit code " + std::to_string(r.exit_code) +
         (r.timed_out ? " (killed at the deadline)" : "") + "\n" + r.output;
}

// Runs `argv` to completion (or until `deadline`, then SIGKILL) and returns
// its exit code and output.
RunResult Run(const std::vector<std::string>& argv,
              std::chrono::seconds deadline = 120s,
              const std::string& stdin_path = "/dev/null") {
  relsupd::support::RunOptions options;
  options.timeout_ms = static_cast<int>(deadline.count() * 1000);
  options.stdin_path = stdin_path;
  options.merge_stderr = true;
  relsupd::support::ProcResult r = relsupd::support::RunProcess(argv, options);
  return RunResult{r.exit_code(), r.status.timed_out, r.out};
}

// A `relsupd daemon` child with `config`, its state dir `dir` and its
// socket in it. The destructor always stops it (SIGTERM, then SIGKILL after
// 10 s) and reaps it, so a failed REQUIRE leaks nothing.
class DaemonGuard {
 public:
  DaemonGuard(const TempDir& dir, const std::string& config)
      : daemon_(dir, Options(dir, config)) {}

  const std::string& socket() const { return daemon_.socket(); }
  std::string Log() const { return daemon_.Log(); }

  // Polls until the daemon answers on its control socket (10 s); false
  // (with the daemon's log) when it never does or the daemon exits.
  bool WaitReady() {
    try {
      daemon_.WaitReady();
      return true;
    } catch (const std::exception& e) {
      UNSCOPED_INFO(e.what());
      return false;
    }
  }

  // Stops the daemon; returns its wait status.
  int Stop() { return daemon_.Terminate().wait_status; }

 private:
  static relsupd::support::DaemonOptions Options(const TempDir& dir,
                                                 const std::string& config) {
    relsupd::support::DaemonOptions o;
    o.config = config;
    o.state_dir = dir.path();
    o.socket = dir / "s.sock";
    o.log_path = dir / "daemon.log";
    o.wait_ready = false;
    return o;
  }

  relsupd::support::DaemonProcess daemon_;
};

std::string UnitSource() { return kSourceDir + "/units/relsupd.service"; }

// The unit with ExecStart pointed at the built binary, which verify requires
// to exist.
std::string UnitForBuiltBinary() {
  std::string unit = ReadText(UnitSource());
  const std::string from = "\nExecStart=/usr/bin/relsupd ";
  size_t at = unit.find(from);
  INFO("the unit must start /usr/bin/relsupd");
  REQUIRE(at != std::string::npos);
  REQUIRE(unit.find(from, at + 1) == std::string::npos);
  unit.replace(at, from.size(), "\nExecStart=" + kRelsupd + " ");
  return unit;
}

// Lines of `systemd-analyze verify` output that are about the unit file
// itself: parse diagnostics have the form "PATH:LINE: message", and a
// command it cannot run is "relsupd.service: Command ...".
std::vector<std::string> ComplaintsAboutUnit(const std::string& output,
                                             const std::string& unit_path) {
  std::vector<std::string> complaints;
  for (const auto& line : Lines(output)) {
    if (line.find(unit_path + ":") != std::string::npos ||
        line.find("relsupd.service: Command") != std::string::npos)
      complaints.push_back(line);
  }
  return complaints;
}

// Key=Value pairs of a unit file, by key (a key may repeat).
std::multimap<std::string, std::string> UnitSettings(const std::string& text) {
  std::multimap<std::string, std::string> settings;
  for (const auto& line : Lines(text)) {
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[')
      continue;
    size_t eq = line.find('=');
    if (eq != std::string::npos)
      settings.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return settings;
}

std::string Setting(const std::multimap<std::string, std::string>& settings,
                    const std::string& key) {
  auto [first, last] = settings.equal_range(key);
  std::string value;
  for (auto it = first; it != last; ++it) value = it->second;  // last one wins
  return value;
}

// The last token of each line of `dpkg-deb -c`: the paths in the package.
std::set<std::string> PackagePaths(const std::string& listing) {
  std::set<std::string> paths;
  for (const auto& line : Lines(listing)) {
    size_t sp = line.find_last_of(' ');
    if (sp != std::string::npos) paths.insert(line.substr(sp + 1));
  }
  return paths;
}

bool HasEither(const std::set<std::string>& paths, const std::string& a,
               const std::string& b) {
  return paths.count(a) > 0 || paths.count(b) > 0;
}

// "# key: value", a config key left at its default by commenting it out.
bool IsCommentedOutKey(const std::string& line) {
  if (line.rfind("# ", 0) != 0) return false;
  size_t colon = line.find(": ");
  if (colon == std::string::npos || colon == 2) return false;
  return std::all_of(line.begin() + 2, line.begin() + colon,
                     [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

// The keys the daemon's config parser accepts, read from its refusal of an
// unknown key ("... (known keys: a, b, c)"), so that a key added to the
// parser but not to config/relsupd.yaml fails the test below.
std::set<std::string> KnownDaemonConfigKeys() {
  auto probe = relsupd::ParseDaemonConfig("no_such_key_probe: 1\n", "probe");
  REQUIRE_FALSE(probe.ok());
  const std::string& message = probe.status().message();
  const std::string marker = "(known keys: ";
  size_t begin = message.find(marker);
  size_t end = message.find(')', begin);
  INFO(message);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  std::set<std::string> keys;
  std::istringstream list(message.substr(begin + marker.size(),
                                         end - begin - marker.size()));
  for (std::string key; std::getline(list, key, ',');) {
    key.erase(0, key.find_first_not_of(' '));
    keys.insert(key);
  }
  return keys;
}

}  // namespace

TEST_CASE("systemd-analyze verify accepts relsupd.service") {
  const std::string analyze =
      ProgramOrSkip("systemd-analyze", "the unit check");
  if (analyze.empty()) return;
  TempDir dir;
  const std::string unit_path = dir / "relsupd.service";
  WriteText(unit_path, UnitForBuiltBinary());

  RunResult r = Run({analyze, "verify", unit_path});
  INFO(Describe({analyze, "verify", unit_path}, r));
  CHECK(r.exit_code == 0);
  CHECK(ComplaintsAboutUnit(r.output, unit_path).empty());

  SECTION("the same check catches a broken copy") {
    // Guards the check above: a typo in a value and an unknown key must be
    // reported, or the test could never fail.
    std::string broken = UnitForBuiltBinary();
    size_t at = broken.find("\nKillMode=mixed\n");
    REQUIRE(at != std::string::npos);
    broken.replace(at, 16, "\nKillMode=mixd\nNoSuchKey=1\n");
    const std::string broken_path = dir / "broken";
    REQUIRE(mkdir(broken_path.c_str(), 0700) == 0);
    WriteText(broken_path + "/relsupd.service", broken);
    RunResult b = Run({analyze, "verify", broken_path + "/relsupd.service"});
    INFO(Describe({analyze, "verify", broken_path + "/relsupd.service"}, b));
    CHECK(ComplaintsAboutUnit(b.output, broken_path + "/relsupd.service")
              .size() >= 2);
  }
}

TEST_CASE("relsupd.service keeps the settings relsupd relies on") {
  const auto s = UnitSettings(ReadText(UnitSource()));
  const std::pair<const char*, const char*> settings[] = {
      {"Type", "notify"},
      {"ExecStart",
       "/usr/bin/relsupd daemon --config /etc/relsupd/relsupd.yaml"},
      {"ExecReload", "/bin/kill -HUP $MAINPID"},
      {"KillMode", "mixed"},
      {"Delegate", "yes"},
      {"Restart", "on-failure"},
      {"WatchdogSec", "30s"},
      {"LimitNOFILE", "65536"},
      {"StateDirectory", "relsupd"},
      {"StateDirectoryMode", "0711"},
      {"RuntimeDirectory", "relsupd"},
      {"RuntimeDirectoryMode", "0755"},
      {"RuntimeDirectoryPreserve", "no"},
      {"ProtectSystem", "strict"},
  };
  for (const auto& [key, value] : settings) {
    INFO(key);
    CHECK(Setting(s, key) == value);
  }

  // The daemon runs as root and drops to each app's user, binds privileged
  // ports and manages its cgroups; these would break it or its apps.
  for (const char* key : {"User", "DynamicUser", "NoNewPrivileges",
                          "MemoryDenyWriteExecute", "ProtectControlGroups",
                          "PrivateUsers", "PrivateNetwork", "ProtectProc"}) {
    INFO("relsupd.service must not set " << key);
    CHECK(s.count(key) == 0);
  }
  const std::string caps = Setting(s, "CapabilityBoundingSet");
  for (const char* cap : {"CAP_SETUID", "CAP_SETGID", "CAP_KILL",
                          "CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_FOWNER",
                          "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH",
                          "CAP_SYS_RESOURCE"}) {
    INFO("CapabilityBoundingSet=" << caps << " must hold " << cap);
    CHECK((" " + caps + " ").find(std::string(" ") + cap + " ") !=
          std::string::npos);
  }

  // The unit's writable directories are where the shipped config points.
  auto config = relsupd::LoadDaemonConfig(kSourceDir + "/config/relsupd.yaml");
  REQUIRE(config.ok());
  CHECK(config->state_dir == "/var/lib/" + Setting(s, "StateDirectory"));
  CHECK(fs::path(config->socket).parent_path() ==
        "/run/" + Setting(s, "RuntimeDirectory"));
}

TEST_CASE("sysusers.d and tmpfiles.d entries apply to an empty root") {
  const std::string sysusers =
      ProgramOrSkip("systemd-sysusers", "the sysusers.d check");
  const std::string tmpfiles =
      ProgramOrSkip("systemd-tmpfiles", "the tmpfiles.d check");
  if (sysusers.empty() || tmpfiles.empty()) return;
  if (geteuid() != 0) {
    WARN("not root: systemd-tmpfiles cannot chown, skipping");
    return;
  }
  TempDir root;
  REQUIRE(mkdir((root / "etc").c_str(), 0755) == 0);

  // With --root, file arguments resolve inside the root: feed them on stdin.
  const std::vector<std::string> users = {sysusers, "--root=" + root.path(), "-"};
  RunResult u = Run(users, 60s, kSourceDir + "/units/relsupd.sysusers");
  INFO(Describe(users, u));
  REQUIRE(u.exit_code == 0);
  const auto groups = Lines(ReadText(root / "etc/group"));
  auto has_group = [&](const std::string& name) {
    for (const auto& g : groups)
      if (g.rfind(name + ":", 0) == 0) return true;
    return false;
  };
  CHECK(has_group("relsupd"));
  CHECK(has_group("relsupd-admin"));

  const std::vector<std::string> dirs = {tmpfiles, "--create",
                                         "--root=" + root.path(), "-"};
  RunResult t = Run(dirs, 60s, kSourceDir + "/units/relsupd.tmpfiles");
  INFO(Describe(dirs, t));
  REQUIRE(t.exit_code == 0);
  struct stat st {};
  REQUIRE(stat((root / "run/relsupd").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0755);
  REQUIRE(stat((root / "var/lib/relsupd").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0711);
}

TEST_CASE("cpack builds a .deb with the binary, unit, config and conffiles") {
  const std::string dpkg_deb = ProgramOrSkip("dpkg-deb", "the package check");
  if (dpkg_deb.empty()) return;
  TempDir out;
  const std::vector<std::string> pack = {
      kCpack, "-G", "DEB", "-B", out.path(), "--config",
      kBinaryDir + "/CPackConfig.cmake"};
  RunResult r = Run(pack, 240s);
  INFO(Describe(pack, r));
  REQUIRE(r.exit_code == 0);

  std::vector<std::string> debs;
  for (const auto& e : fs::directory_iterator(out.path()))
    if (e.path().extension() == ".deb") debs.push_back(e.path().string());
  REQUIRE(debs.size() == 1);
  const std::string deb = debs[0];
  CHECK(fs::path(deb).filename().string().rfind("relsupd_", 0) == 0);

  RunResult list = Run({dpkg_deb, "-c", deb});
  INFO(Describe({dpkg_deb, "-c", deb}, list));
  REQUIRE(list.exit_code == 0);
  const auto paths = PackagePaths(list.output);
  CHECK(paths.count("./usr/bin/relsupd") == 1);
  CHECK(HasEither(paths, "./lib/systemd/system/relsupd.service",
                  "./usr/lib/systemd/system/relsupd.service"));
  CHECK(HasEither(paths, "./lib/sysusers.d/relsupd.conf",
                  "./usr/lib/sysusers.d/relsupd.conf"));
  CHECK(HasEither(paths, "./lib/tmpfiles.d/relsupd.conf",
                  "./usr/lib/tmpfiles.d/relsupd.conf"));
  CHECK(paths.count("./etc/relsupd/relsupd.yaml") == 1);
  CHECK(paths.count("./usr/share/doc/relsupd/examples/shop.yaml") == 1);
  for (const char* page : {"man8/relsupd.8.gz", "man1/relsupd-ctl.1.gz",
                           "man1/relsupd-build.1.gz", "man5/relsupd.yaml.5.gz",
                           "man5/relsupd-app.5.gz"})
    CHECK(paths.count(std::string("./usr/share/man/") + page) == 1);
  CHECK(paths.count("./usr/share/bash-completion/completions/relsupd") == 1);
  CHECK(paths.count("./usr/share/zsh/vendor-completions/_relsupd") == 1);

  const std::string control = out / "control";
  RunResult e = Run({dpkg_deb, "-e", deb, control});
  INFO(Describe({dpkg_deb, "-e", deb, control}, e));
  REQUIRE(e.exit_code == 0);
  const auto conffiles = Lines(ReadText(control + "/conffiles"));
  CHECK(std::count(conffiles.begin(), conffiles.end(),
                   "/etc/relsupd/relsupd.yaml") == 1);
  const std::string fields = ReadText(control + "/control");
  CHECK(fields.find("Package: relsupd\n") != std::string::npos);
  CHECK(fields.find("Section: admin\n") != std::string::npos);
  CHECK(fields.find("Depends: ") != std::string::npos);

  // What is in the package is what is in the tree.
  const std::string root = out / "root";
  RunResult x = Run({dpkg_deb, "-x", deb, root});
  INFO(Describe({dpkg_deb, "-x", deb, root}, x));
  REQUIRE(x.exit_code == 0);
  const std::string unit = fs::exists(root + "/usr/lib/systemd/system/relsupd.service")
                               ? root + "/usr/lib/systemd/system/relsupd.service"
                               : root + "/lib/systemd/system/relsupd.service";
  CHECK(ReadText(unit) == ReadText(UnitSource()));
  CHECK(ReadText(root + "/etc/relsupd/relsupd.yaml") ==
        ReadText(kSourceDir + "/config/relsupd.yaml"));
  CHECK(ReadText(root + "/usr/share/bash-completion/completions/relsupd") ==
        ReadText(kSourceDir + "/packaging/completion/relsupd.bash"));
  CHECK(ReadText(root + "/usr/share/zsh/vendor-completions/_relsupd") ==
        ReadText(kSourceDir + "/packaging/completion/_relsupd"));
  RunResult version = Run({root + "/usr/bin/relsupd", "--version"});
  INFO(Describe({root + "/usr/bin/relsupd", "--version"}, version));
  CHECK(version.exit_code == 0);
  CHECK(version.output.rfind("relsupd ", 0) == 0);
}

TEST_CASE("config/relsupd.yaml states every key with its default") {
  const std::string path = kSourceDir + "/config/relsupd.yaml";
  const std::string text = ReadText(path);
  auto parsed = relsupd::ParseDaemonConfig(text, path);
  INFO((parsed.ok() ? std::string() : parsed.status().message()));
  REQUIRE(parsed.ok());
  CHECK(*parsed == relsupd::DaemonConfig{});

  // Each key is set (or commented out) right below a "# Default: V" line,
  // and V is the value written.
  std::set<std::string> keys;
  std::string last_default;
  for (std::string line : Lines(text)) {
    if (line.rfind("# Default: ", 0) == 0) {
      last_default = line.substr(11);
      continue;
    }
    if (IsCommentedOutKey(line)) line = line.substr(2);
    size_t colon = line.find(": ");
    if (line.empty() || line[0] == '#' || colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    INFO("key '" << key << "'");
    CHECK(line.substr(colon + 2) == last_default);
    keys.insert(key);
    last_default.clear();
  }
  CHECK(keys == KnownDaemonConfigKeys());
}

TEST_CASE("the daemon starts with the shipped config and answers ctl info") {
  TempDir dir;
  DaemonGuard daemon(dir, kSourceDir + "/config/relsupd.yaml");
  {
    INFO("daemon log:\n" << daemon.Log());
    REQUIRE(daemon.WaitReady());
  }
  const std::vector<std::string> info = {kRelsupd, "ctl", "--socket",
                                         daemon.socket(), "--json", "info"};
  RunResult r = Run(info, 30s);
  INFO(Describe(info, r));
  INFO("daemon log:\n" << daemon.Log());
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("\"state_dir\": \"" + dir.path() + "\"") !=
        std::string::npos);

  int status = daemon.Stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("config/examples/shop.yaml is a valid app spec") {
  const std::string spec = kSourceDir + "/config/examples/shop.yaml";
  auto parsed = relsupd::ParseAppSpecYaml(ReadText(spec), spec);
  INFO((parsed.ok() ? std::string() : parsed.status().message()));
  REQUIRE(parsed.ok());
  CHECK(parsed->name == "shop");
  CHECK(parsed->activation_deadline_ms == 60'000);
  REQUIRE(parsed->sockets.size() == 1);
  CHECK(parsed->sockets[0].name == "http");
  CHECK(parsed->sockets[0].address == "tcp://127.0.0.1:8080");

  TempDir dir;
  DaemonGuard daemon(dir, kSourceDir + "/config/relsupd.yaml");
  {
    INFO("daemon log:\n" << daemon.Log());
    REQUIRE(daemon.WaitReady());
  }
  const std::vector<std::string> apply = {kRelsupd, "ctl", "--socket",
                                          daemon.socket(), "app", "apply", spec};
  RunResult first = Run(apply, 30s);
  {
    INFO(Describe(apply, first));
    INFO("daemon log:\n" << daemon.Log());
    REQUIRE(first.exit_code == 0);
    CHECK(first.output.find("App 'shop' applied") != std::string::npos);
  }
  RunResult again = Run(apply, 30s);
  INFO(Describe(apply, again));
  CHECK(again.exit_code == 0);
  CHECK(again.output.find("App 'shop' unchanged") != std::string::npos);
}
