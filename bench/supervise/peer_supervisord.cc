// The supervisord peer of the supervise benchmark: one `supervisord -n` per
// phase with its own config file (Debian `supervisor`).
//
// SupervisordPeer owns supervisord (by pid). Single-threaded.

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

// The storm's setting: retry a failed start (almost) forever.
constexpr char kStormRetries[] = "startretries=1000000";

// supervisord.conf of `n` processes of `command` as [program:PROGRAM], its
// files in `d`; `extra`: more lines of the program's section.
std::string Conf(const std::string& d, const std::string& program,
                 const std::string& command, int n, const std::string& extra) {
  return "[unix_http_server]\nfile=" + d +
         "/supervisor.sock\n\n"
         "[supervisord]\nlogfile=" +
         d + "/supervisord.log\npidfile=" + d +
         "/supervisord.pid\nchildlogdir=" + d + "/log\nnodaemon=true\nminfds=" +
         std::to_string(std::max(1024, 6 * n + 64)) +
         "\nminprocs=" + std::to_string(std::max(200, n + 64)) +
         "\nloglevel=warn\n\n"
         "[rpcinterface:supervisor]\n"
         "supervisor.rpcinterface_factory = "
         "supervisor.rpcinterface:make_main_rpcinterface\n\n"
         "[supervisorctl]\nserverurl=unix://" +
         d +
         "/supervisor.sock\n\n"
         "[program:" +
         program + "]\ncommand=" + command +
         "\nprocess_name=%(program_name)s_%(process_num)d\nnumprocs=" +
         std::to_string(n) + "\nautorestart=true\n" + extra;
}

class SupervisordPeer final : public Peer {
 public:
  using Peer::Peer;

  bool Setup(std::string* why, std::string* version) override {
    if (!FindPrograms({{&supervisord_, "supervisord"},
                       {&supervisorctl_, "supervisorctl"}},
                      "supervisord not found; apt-get install supervisor", why))
      return false;
    *version = VersionOf({supervisord_, "--version"});
    return true;
  }
  bool StartChildren(int k, std::string* error) override {
    WriteConfig("child",
                o_.child + " " + hello_->path() + " sd.%(process_num)d", k, "");
    return Start(error);
  }
  bool PrepareFanout(int n, const std::string& marker, std::string*) override {
    WriteConfig("sleep", "/bin/sleep " + marker, n, "");
    return true;
  }
  bool TriggerFanout(std::string* error) override { return Start(error); }
  bool StartStorm(int m, std::string* error) override {
    // startsecs stays 1 (the default): a process that exits sooner is a
    // failed start, retried with supervisord's backoff (1 s, 2 s, ...).
    WriteConfig("crash", "/bin/false", m, std::string(kStormRetries) + "\n");
    return Start(error);
  }
  std::vector<std::string> StatusCommand() override {
    return {supervisorctl_, "-c", conf_, "status"};
  }
  bool StartLogWriter(int64_t lines, int line_bytes,
                      std::string* error) override {
    log_file_ = dir_ + "/log/out.log";
    WriteConfig(
        "log",
        o_.writer + " " + hello_->path() + " " + std::to_string(lines) + " " +
            std::to_string(line_bytes),
        1,
        "stdout_logfile=" + log_file_ +
            "\nstdout_logfile_maxbytes=" + std::to_string(kLogFileBytes) +
            "\nstdout_logfile_backups=" + std::to_string(o_.LogFilesToKeep()) +
            "\n");
    return Start(error);
  }
  std::vector<std::string> LogFiles() override {
    // supervisord rotates at the byte count, even in the middle of a line.
    return OldestFirst(FilesIn(dir_ + "/log", [](const std::string& f) {
      return f.starts_with("out.log");
    }));
  }
  std::string LogSettings() const override {
    return "supervisord: [program:log] stdout_logfile=FILE, "
           "stdout_logfile_maxbytes=" +
           std::to_string(kLogFileBytes) +
           ", stdout_logfile_backups=" + std::to_string(o_.LogFilesToKeep()) +
           ", other settings default";
  }
  pid_t Root() override { return pid_; }
  void StopPhase() override {
    if (pid_ > 0) {
      StopChild(pid_, SIGTERM, 60);
      pid_ = -1;
    }
    KillStraysAfter("supervisord", "stop");
  }
  std::string Config() const override {
    return "supervisord: `supervisord -n` per phase, [program:x] numprocs=N, "
           "autorestart=true, other settings default (output to log files in "
           "the temp dir); fan-out timed from the spawn of supervisord; "
           "storm: " +
           std::string(kStormRetries) + " (backoff 1 s, 2 s, ...)";
  }

 private:
  void WriteConfig(const std::string& program, const std::string& command,
                   int n, const std::string& extra) {
    const std::string d = dir_ + "/" + program;
    fs::create_directories(d + "/log");
    conf_ = d + "/supervisord.conf";
    WriteFile(conf_, Conf(d, program, command, n, extra));
    log_ = d + "/supervisord.out";
  }
  bool Start(std::string* error) {
    pid_ = Spawn({supervisord_, "-n", "-c", conf_}, log_, {}, error);
    return pid_ > 0;
  }

  std::string supervisord_, supervisorctl_, conf_, log_, log_file_;
  pid_t pid_ = -1;
};

}  // namespace

std::unique_ptr<Peer> NewSupervisordPeer(const Options& o, std::string dir,
                                         HelloSocket* hello) {
  return std::make_unique<SupervisordPeer>("supervisord", o, std::move(dir),
                                           hello);
}

}  // namespace relsupd::bench::supervise
