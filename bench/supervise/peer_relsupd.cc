// The relsupd peer of the supervise benchmark: one `relsupd daemon` for all
// phases, an app `bench` whose release declares `child`, `worker`, `crash`
// and `log` at scale 0; each phase scales one of them with `relsupd ctl`.
//
// RelsupdPeer owns the daemon (by pid) and the trigger's `ctl scale`
// process. Single-threaded.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bench/supervise/peer.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/util.h"
#include "tests/support/fs.h"

namespace relsupd::bench::supervise {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// The daemon's relsupd.yaml.
std::string DaemonConfig(const Options& o) {
  // Round-robin kills reach each instance every ~1.5 s: a reset after 1 s
  // makes each kill a first restart. The storm restarts at most once a
  // second (backoff 100 ms doubling to 1 s), like runsv; no crash limit.
  // The log keys matter only to the log phase (the other phases' children
  // write nothing): the default rate limit (4 MiB/s per instance) is a
  // deliberate throttle that would make the phase measure it, and the
  // default 4 files of 8 MiB would rotate most of the lines away.
  return "log_level: warn\n"
         "restart_initial_delay: 100ms\n"
         "restart_max_delay: 1s\n"
         "restart_reset_after: 1s\n"
         "crash_limit: 1000000\n"
         "crash_window: 10s\n"
         "log_rate_limit: " +
         std::to_string(kLogRateLimit) +
         "\n"
         "log_max_file_bytes: " +
         std::to_string(kLogFileBytes) +
         "\n"
         "log_max_files: " +
         std::to_string(o.LogFilesToKeep()) + "\n";
}

class RelsupdPeer final : public Peer {
 public:
  using Peer::Peer;

  bool Setup(std::string* why, std::string* version) override {
    socket_ = dir_ + "/s.sock";
    fs::create_directories(dir_ + "/state");
    if (!WriteFile(dir_ + "/relsupd.yaml", DaemonConfig(o_))) {
      *why = "cannot write " + dir_ + "/relsupd.yaml";
      return false;
    }
    return StartDaemon(why, version) && CreateApp(why);
  }

  bool StartChildren(int k, std::string* error) override {
    return Ctl({"scale", "bench", "child=" + std::to_string(k)}, error);
  }
  bool PrepareFanout(int n, const std::string&, std::string*) override {
    n_ = n;
    return true;
  }
  bool TriggerFanout(std::string* error) override {
    return StartTrigger({o_.relsupd, "ctl", "--socket", socket_, "scale",
                         "bench", "worker=" + std::to_string(n_)},
                        dir_ + "/scale.log", {}, 0, error);
  }
  bool StartStorm(int m, std::string* error) override {
    return Ctl({"scale", "bench", "crash=" + std::to_string(m)}, error);
  }
  std::vector<std::string> StatusCommand() override {
    return {o_.relsupd, "ctl", "--socket", socket_, "ps", "bench"};
  }
  double DirectStatusMs() override {
    // One connection per query, as the ctl command makes.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
    const std::string req =
        R"({"jsonrpc":"2.0","id":1,"method":"ps","params":{"app":"bench"}})"
        "\n";
    const int64_t t0 = MonoNs();
    double ms = -1;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        send(fd, req.data(), req.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(req.size())) {
      std::string resp;
      char buf[16384];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        resp.append(buf, static_cast<size_t>(n));
        if (resp.back() == '\n') break;
      }
      if (!resp.empty() && resp.back() == '\n' &&
          resp.find("\"result\"") != std::string::npos)
        ms = static_cast<double>(MonoNs() - t0) / 1e6;
    }
    close(fd);
    return ms;
  }
  bool StartLogWriter(int64_t, int, std::string* error) override {
    // The line count and length are in the release's command (Setup).
    return Ctl({"scale", "bench", "log=1"}, error);
  }
  std::vector<std::string> LogFiles() override {
    return OldestFirst(FilesIn(
        dir_ + "/state/logs/bench",
        [](const std::string& f) { return f.starts_with("current.log"); }));
  }
  bool LogIsRecords() const override { return true; }
  std::string LogSettings() const override {
    return "relsupd: log store STATE/logs/bench/current.log*, log_rate_limit " +
           std::to_string(kLogRateLimit) +
           " (1 GiB/s; default 4 MiB/s), log_max_file_bytes " +
           std::to_string(kLogFileBytes) + " (64 MiB), log_max_files " +
           std::to_string(o_.LogFilesToKeep()) +
           "; one record a line: seq, time, release, process, stream, "
           "flags, length, text";
  }
  pid_t Root() override { return daemon_.pid(); }
  void StopPhase() override {
    std::string error;
    if (daemon_.pid() <= 0) return;
    if (!Ctl({"scale", "bench", "child=0", "worker=0", "crash=0", "log=0"},
             &error))
      std::fprintf(stderr, "supervise: relsupd: %s\n", error.c_str());
    if (!WaitNoDescendants(daemon_.pid(), 60))
      std::fprintf(stderr,
                   "supervise: relsupd: instances still running 60 s after "
                   "scale to 0; killing them\n");
    KillStrays({daemon_.pid()});
  }
  void Teardown() override {
    if (daemon_.pid() > 0) {
      daemon_.Stop();
      const int status = daemon_.exit_status();
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        std::fprintf(
            stderr, "supervise: relsupd daemon stopped: %s\n%s",
            DescribeStatus(status).c_str(),
            LastLines(support::ReadFileOrEmpty(dir_ + "/daemon.log"), 20)
                .c_str());
    }
    KillStrays();
  }
  std::string Config() const override {
    return "relsupd: `relsupd daemon` with restart_initial_delay 100ms, "
           "restart_max_delay 1s, "
           "restart_reset_after 1s, crash_limit 1000000 (cgroup: default); app "
           "from "
           "relsupd.yaml, each phase `ctl scale`";
  }

 private:
  // Starts the daemon and waits until `ctl info` answers (15 s).
  bool StartDaemon(std::string* why, std::string* version) {
    std::string info;
    daemon_.set_stop_timeout(30);
    if (daemon_.Start(o_.relsupd, dir_ + "/state", socket_,
                      dir_ + "/daemon.log", why,
                      {"--config", dir_ + "/relsupd.yaml"}) &&
        daemon_.WaitReady(dir_, 15, why, &info)) {
      try {
        *version = Json::parse(info).value("version", "?");
      } catch (...) {
        *version = "?";
      }
      return true;
    }
    const std::string log =
        Trim(LastLines(support::ReadFileOrEmpty(dir_ + "/daemon.log"), 5));
    if (!log.empty()) *why += ": " + log;
    return false;
  }

  // The app `bench`, built, imported, released as v1 and activated.
  bool CreateApp(std::string* why) {
    // The app: supervise_child copied into it, three process types.
    const std::string app = dir_ + "/app";
    fs::create_directories(app);
    std::error_code ec;
    fs::copy_file(o_.child, app + "/supervise_child",
                  fs::copy_options::overwrite_existing, ec);
    if (ec) {
      *why = "cannot copy " + o_.child + ": " + ec.message();
      return false;
    }
    chmod((app + "/supervise_child").c_str(), 0755);
    // log_writer is run from where it was built, not copied into the app:
    // importing the larger artifact left the daemon 1.1 MiB more anonymous
    // RSS, which the memory phase would have counted.
    WriteFile(app + "/relsupd.yaml",
              "processes:\n"
              "  child:\n"
              "    command: ./supervise_child " +
                  hello_->path() +
                  "\n"
                  "    scale: 0\n"
                  "  worker:\n"
                  "    command: sleep " +
                  std::string(kSleepMarker[0]) +
                  "\n"
                  "    scale: 0\n"
                  "  crash:\n"
                  "    command: /bin/false\n"
                  "    scale: 0\n"
                  "  log:\n"
                  "    command: " +
                  o_.writer + " " + hello_->path() + " " +
                  std::to_string(o_.LogLines()) + " " +
                  std::to_string(o_.log_line_bytes) +
                  "\n"
                  "    scale: 0\n");
    if (!Ctl({"app", "create", "bench"}, why)) return false;
    RunResult b = RunIn({o_.relsupd, "build", app, "-o", dir_ + "/app.tar.gz"},
                        dir_, 120);
    if (!b.ok()) {
      *why = "relsupd build: " + b.Describe();
      return false;
    }
    std::string out;
    if (!Ctl({"--json", "build", "import", "bench", dir_ + "/app.tar.gz"}, why,
             &out))
      return false;
    std::string id;
    try {
      id = Json::parse(out).at("id").get<std::string>();
    } catch (...) {
      *why = "ctl build import printed no id: " + Trim(out);
      return false;
    }
    if (!Ctl({"release", "create", "bench", "--build", id}, why)) return false;
    if (!Ctl({"activate", "bench", "v1"}, why)) return false;
    return true;
  }

  bool Ctl(std::vector<std::string> args, std::string* error,
           std::string* out = nullptr) {
    std::vector<std::string> argv = {o_.relsupd, "ctl", "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = RunIn(argv, dir_, 120);
    if (!r.ok()) {
      std::string what;
      for (const auto& a : args) what += (what.empty() ? "" : " ") + a;
      *error = "relsupd ctl " + what + ": " + r.Describe();
      return false;
    }
    if (out) *out = r.out;
    return true;
  }

  std::string socket_;
  DaemonProcess daemon_;  // stopped by Teardown
  int n_ = 0;
};

}  // namespace

std::unique_ptr<Peer> NewRelsupdPeer(const Options& o, std::string dir,
                                     HelloSocket* hello) {
  return std::make_unique<RelsupdPeer>("relsupd", o, std::move(dir), hello);
}

}  // namespace relsupd::bench::supervise
