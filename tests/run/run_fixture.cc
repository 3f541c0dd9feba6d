#include "tests/run/run_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "daemon/protocol/methods.h"
#include "tests/support/cli.h"
#include "tests/support/failure.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace relsupd::run_test {

std::string FastConfig(const std::string& extra, int crash_limit) {
  return "restart_initial_delay: 20ms\n"
         "restart_max_delay: 200ms\n"
         "crash_limit: " + std::to_string(crash_limit) + "\n"
         "crash_window: 30s\n" +
         extra;
}

std::string ReleaseTo(Stage& stage, const std::string& app, const std::vector<Entry>& entries) {
  std::string file = stage.Artifact(app + ".tar.gz", entries);
  Json build = stage.CtlJson({"build", "import", app, file});
  std::string release = stage.CtlOk(
      {"release", "create", app, "--build", build["id"].get<std::string>()});
  while (!release.empty() && (release.back() == '\n' || release.back() == ' '))
    release.pop_back();
  return release;
}

std::string DeployTo(Stage& stage, const std::string& app,
                     const std::vector<Entry>& entries, bool no_wait) {
  const std::string release = ReleaseTo(stage, app, entries);
  if (no_wait)
    stage.CtlOk({"activate", app, release, "--no-wait"});
  else
    stage.CtlOk({"activate", app, release});
  return release;
}

std::string Deploy(Stage& stage, const std::vector<Entry>& entries, bool no_wait) {
  return DeployTo(stage, stage.app(), entries, no_wait);
}

std::string DeployProcfile(Stage& stage, const std::string& procfile, bool no_wait) {
  return Deploy(stage, {release_test::File("Procfile", procfile)}, no_wait);
}

std::string DeployYaml(Stage& stage, const std::string& yaml, bool no_wait) {
  return Deploy(stage, {release_test::File("relsupd.yaml", yaml)}, no_wait);
}

WritableDir::WritableDir() {
  if (::mkdir(path.c_str(), 0777) != 0 || ::chmod(path.c_str(), 0777) != 0)
    support::Fail("cannot make " + path + " writable for the app");
}

void Gate::Open() { dir.dir.WriteFile("marks/gate", ""); }

void Gate::Close() {
  if (::unlink(path.c_str()) != 0) support::Fail("cannot remove " + path);
}

std::string IgnoresTerm(const std::string& name, const std::string& stop_timeout) {
  return "  " + name + ":\n"
         "    command: trap '' TERM; while :; do sleep 0.05; done\n"
         "    stop_timeout: " + stop_timeout + "\n";
}

std::string GatedNotifyYaml(const std::string& gate) {
  return "processes:\n"
         "  web:\n"
         "    command: >-\n"
         "      exec python3 -c \"import os, socket, time;\n"
         "      [time.sleep(0.01) for _ in iter(lambda: os.path.exists('" + gate + "'), True)];\n"
         "      socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', os.environ['NOTIFY_SOCKET']);\n"
         "      time.sleep(1000)\"\n"
         "    ready: notify\n";
}

Json Ps(Stage& stage) {
  return support::Call(stage.socket(), rpc::method::kPs, {{"app", stage.app()}});
}

Json Row(const Json& ps, const std::string& process) {
  for (const auto& r : ps)
    if (r.value("process", "") == process) return r;
  return Json();
}

Json WaitPs(Stage& stage, const std::function<bool(const Json&)>& pred,
            int timeout_ms, const std::string& what) {
  Json ps;
  if (!support::WaitUntil([&] { return pred(ps = Ps(stage)); }, timeout_ms, 25))
    support::Fail("timed out waiting for " + (what.empty() ? std::string("ps") : what) +
                  "; last ps: " + ps.dump());
  return ps;
}

bool AllIn(const Json& ps, const std::string& type, const std::string& state,
           size_t n) {
  size_t count = 0;
  for (const auto& r : ps) {
    if (!type.empty() && r.value("type", "") != type) continue;
    if (r.value("state", "") != state) return false;
    ++count;
  }
  return count == n;
}

std::set<pid_t> Pids(const Json& ps, const std::string& type) {
  std::set<pid_t> out;
  for (const auto& r : ps) {
    if (!type.empty() && r.value("type", "") != type) continue;
    if (r.value("pid", 0) > 0) out.insert(r["pid"].get<pid_t>());
  }
  return out;
}

Json Logs(Stage& stage, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--json", "logs", stage.app(), "-n", "100000"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::string out = stage.CtlOk(args);
  Json records = Json::array();
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) records.push_back(Json::parse(line));
  return records;
}

Json LogRecords(Stage& stage) {
  std::vector<Json> pages;  // newest first
  Json q = {{"app", stage.app()}, {"lines", 100'000}};
  while (true) {
    Json r = support::Call(stage.socket(), rpc::method::kLogs, q);
    const Json& records = r["records"];
    if (records.empty()) break;
    pages.push_back(records);
    if (!r.value("more", false)) break;
    q["before_seq"] = records.front()["seq"];
  }
  Json all = Json::array();
  for (auto page = pages.rbegin(); page != pages.rend(); ++page)
    for (const auto& rec : *page) all.push_back(rec);
  return all;
}

bool WaitLog(Stage& stage, const std::string& needle, int timeout_ms) {
  return support::WaitUntil(
      [&] {
        for (const auto& r : LogRecords(stage))
          if (r.value("text", "").find(needle) != std::string::npos) return true;
        return false;
      },
      timeout_ms, 50);
}

pid_t WaitLoggedPid(Stage& stage, const std::string& prefix) {
  if (!WaitLog(stage, prefix)) return 0;
  for (const auto& rec : LogRecords(stage)) {
    std::string t = rec.value("text", "");
    if (t.rfind(prefix, 0) == 0) return std::atoi(t.c_str() + prefix.size());
  }
  return 0;
}

void KillLoggedPids(Stage& stage, const std::string& prefix, size_t n) {
  std::set<pid_t> pids;
  support::WaitUntil([&] {
    pids.clear();
    for (const auto& rec : LogRecords(stage)) {
      std::string t = rec.value("text", "");
      if (t.rfind(prefix, 0) == 0) pids.insert(std::atoi(t.c_str() + prefix.size()));
    }
    return pids.size() >= n;
  });
  for (pid_t p : pids)
    if (p > 0 && Alive(p)) ::kill(p, SIGKILL);
  WaitGone(pids, 5000);
}

Follower::Follower(Stage& stage, const std::vector<std::string>& args) {
  static int count = 0;
  out_ = stage.dir().Path("follow-" + std::to_string(++count) + ".out");
  err_ = out_ + ".err";
  int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int in = support::OpenDevNull();
  if (out < 0 || err < 0 || in < 0) support::Fail("cannot create " + out_);
  std::vector<std::string> argv = {support::RelsupdBin(), "ctl", "--socket", stage.socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = support::Spawn(argv, support::ChildEnv(), in, out, err);
  ::close(out);
  ::close(err);
  ::close(in);
}

void Follower::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  support::ExitStatus st;
  if (!support::WaitPid(pid_, 5'000, &st)) {
    ::kill(pid_, SIGKILL);
    support::WaitPid(pid_, 5'000, &st);
  }
  pid_ = 0;
}

std::string Follower::out() const { return release_test::ReadText(out_); }
std::string Follower::err() const { return release_test::ReadText(err_); }

bool Follower::WaitOut(const std::string& needle, size_t from) const {
  return support::WaitUntil([&] { return out().find(needle, from) != std::string::npos; },
                            20'000);
}

bool Follower::running() {
  support::ExitStatus st;
  if (pid_ <= 0) return false;
  if (!support::WaitPid(pid_, 0, &st)) return true;
  pid_ = 0;  // reaped: Stop has nothing left to wait for
  return false;
}

}  // namespace relsupd::run_test
