// The runit peer of the supervise benchmark: one `runsvdir` per phase on a
// fresh directory of service dirs (Debian `runit`).
//
// RunitPeer owns runsvdir (by pid); the runsv processes it leaves are
// reaped as the benchmark's adopted children. Single-threaded.

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
#include <set>
#include <string>
#include <vector>

#include "bench/supervise/peer.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {
namespace {

namespace fs = std::filesystem;

// A service dir `svc` whose ./run is `run`: a symlink to that program, or
// a script of that text when it starts with "#!".
void MakeService(const std::string& svc, const std::string& run) {
  fs::create_directories(svc);
  if (run.starts_with("#!"))
    WriteFile(svc + "/run", run, 0755);
  else
    fs::create_symlink(run, svc + "/run");
}

class RunitPeer final : public Peer {
 public:
  using Peer::Peer;

  bool Setup(std::string* why, std::string* version) override {
    if (!FindPrograms(
            {{&runsvdir_, "runsvdir"}, {&sv_, "sv"}, {&svlogd_, "svlogd"}},
            "runsvdir/sv not found; apt-get install runit", why))
      return false;
    *version = VersionOf({"dpkg-query", "-W", "-f", "${Version}", "runit"});
    return true;
  }
  bool StartChildren(int k, std::string* error) override {
    NewDir("children");
    // ./run is supervise_child itself (a symlink: no shell in between);
    // it finds the socket in SUPERVISE_SOCK and names itself after the
    // service directory.
    for (int i = 1; i <= k; ++i) {
      status_dirs_.push_back(phase_dir_ + "/runit." + std::to_string(i));
      MakeService(status_dirs_.back(), o_.child);
    }
    return StartRunsvdir(error);
  }
  bool PrepareFanout(int n, const std::string& marker, std::string*) override {
    NewDir("fanout");
    // The usual runit run script.
    for (int i = 1; i <= n; ++i)
      MakeService(phase_dir_ + "/s" + std::to_string(i),
                  "#!/bin/sh\nexec sleep " + marker + "\n");
    return true;
  }
  bool TriggerFanout(std::string* error) override {
    return StartRunsvdir(error);
  }
  bool StartStorm(int m, std::string* error) override {
    NewDir("storm");
    for (int i = 1; i <= m; ++i) {
      status_dirs_.push_back(phase_dir_ + "/c" + std::to_string(i));
      MakeService(status_dirs_.back(), "/bin/false");
    }
    return StartRunsvdir(error);
  }
  std::vector<std::string> StatusCommand() override {
    std::vector<std::string> argv = {sv_, "status"};
    argv.insert(argv.end(), status_dirs_.begin(), status_dirs_.end());
    return argv;
  }
  bool StartLogWriter(int64_t lines, int line_bytes,
                      std::string* error) override {
    // The usual service with a log service: runsv pipes ./run's stdout to
    // ./log/run, which is svlogd on a log directory with its own config
    // (rotation size s, n old files kept).
    NewDir("log");
    const std::string svc = phase_dir_ + "/w1";
    log_dir_ = svc + "/log/main";
    fs::create_directories(log_dir_);
    MakeService(svc, "#!/bin/sh\nexec " + o_.writer + " " + hello_->path() +
                         " " + std::to_string(lines) + " " +
                         std::to_string(line_bytes) + "\n");
    WriteFile(svc + "/log/run",
              "#!/bin/sh\nexec " + svlogd_ + " " + log_dir_ + "\n", 0755);
    WriteFile(log_dir_ + "/config",
              "s" + std::to_string(kLogFileBytes) + "\nn" +
                  std::to_string(o_.LogFilesToKeep()) + "\n");
    return StartRunsvdir(error);
  }
  std::vector<std::string> LogFiles() override {
    // The rotated @TAI64N.s (or .u when not fully written), named by their
    // time, then current ('@' sorts before 'c').
    return FilesIn(log_dir_, [](const std::string& f) {
      return f == "current" ||
             (f.starts_with("@") && (f.ends_with(".s") || f.ends_with(".u")));
    });
  }
  std::string LogSettings() const override {
    return "runit: service dir with ./log/run `exec svlogd DIR` (svlogd's "
           "defaults: no "
           "timestamps, 1024-byte read buffer), DIR/config s" +
           std::to_string(kLogFileBytes) + " n" +
           std::to_string(o_.LogFilesToKeep());
  }
  pid_t Root() override { return runsvdir_pid_; }
  void StopPhase() override {
    if (runsvdir_pid_ > 0) {
      // SIGHUP: runsvdir sends TERM to each runsv and exits; each runsv
      // stops its service (TERM, CONT) and exits.
      std::set<pid_t> runsvs;
      for (const auto& p : Tree(runsvdir_pid_))
        if (p.ppid == runsvdir_pid_) runsvs.insert(p.pid);
      StopChild(runsvdir_pid_, SIGHUP, 10);
      runsvdir_pid_ = -1;
      const int64_t deadline = MonoNs() + 30'000'000'000;
      while (MonoNs() < deadline) {
        bool any = false;
        for (pid_t p : runsvs) {
          ProcStat st;
          if (ReadProcStat(p, &st) && st.state != 'Z') any = true;
          int status = 0;
          waitpid(p, &status, WNOHANG);  // adopted by us
        }
        if (!any) break;
        SleepMs(20);
      }
    }
    status_dirs_.clear();
    KillStraysAfter("runit", "stop");
  }
  std::string Config() const override {
    return "runit: runsvdir on a fresh dir per phase; latency: ./run is a "
           "symlink to "
           "supervise_child; fan-out: `#!/bin/sh exec sleep N` run scripts, "
           "timed from the "
           "spawn of runsvdir; storm: ./run -> /bin/false (runsv restarts at "
           "most once a "
           "second)";
  }

 private:
  // A fresh dir for the phase: the ctl phase starts children again where
  // the restart phase left its service dirs (their runsv are gone by then).
  void NewDir(const std::string& phase) {
    phase_dir_ = dir_ + "/" + phase;
    fs::remove_all(phase_dir_);
    fs::create_directories(phase_dir_);
  }
  bool StartRunsvdir(std::string* error) {
    runsvdir_pid_ = Spawn({runsvdir_, phase_dir_}, dir_ + "/runsvdir.log",
                          {"SUPERVISE_SOCK=" + hello_->path()}, error);
    return runsvdir_pid_ > 0;
  }

  std::string runsvdir_, sv_, svlogd_, phase_dir_, log_dir_;
  pid_t runsvdir_pid_ = -1;
  std::vector<std::string> status_dirs_;
};

}  // namespace

std::unique_ptr<Peer> NewRunitPeer(const Options& o, std::string dir,
                                   HelloSocket* hello) {
  return std::make_unique<RunitPeer>("runit", o, std::move(dir), hello);
}

}  // namespace relsupd::bench::supervise
