// The PM2 peer of the supervise benchmark: PM2_HOME in the temporary dir,
// one God daemon per phase (`pm2 ping` starts it, `pm2 kill` ends it), apps
// from an ecosystem file; `npm install pm2` into the temporary dir when no
// pm2 is on PATH.
//
// Pm2Peer owns the God daemon (adopted: the benchmark is a subreaper) and
// the trigger's `pm2 start` process. Single-threaded.

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

// One fork-mode app of an ecosystem file, output discarded.
Json App(const std::string& name, const std::string& script,
         const std::vector<std::string>& args) {
  return Json{{"name", name},
              {"script", script},
              {"args", args},
              {"interpreter", "none"},
              {"exec_mode", "fork"},
              {"autorestart", true},
              {"out_file", "/dev/null"},
              {"error_file", "/dev/null"},
              {"max_restarts", 1000000},
              {"merge_logs", true}};
}

class Pm2Peer final : public Peer {
 public:
  using Peer::Peer;

  bool Setup(std::string* why, std::string* version) override {
    pm2_ = o_.pm2.empty() ? FindOnPath("pm2") : o_.pm2;
    if (pm2_.empty()) {
      if (FindOnPath("npm").empty() || FindOnPath("node").empty()) {
        *why = "pm2 not found and no node/npm to install it";
        return false;
      }
      std::printf("installing pm2 with npm into %s/npm ...\n", dir_.c_str());
      std::fflush(stdout);
      fs::create_directories(dir_ + "/npm");
      RunResult r =
          RunIn({"npm", "install", "--prefix", dir_ + "/npm", "--no-audit",
                 "--no-fund", "--loglevel=error", "pm2"},
                dir_, 600, {"npm_config_cache=" + dir_ + "/npm-cache"});
      pm2_ = dir_ + "/npm/node_modules/.bin/pm2";
      if (!r.ok() || access(pm2_.c_str(), X_OK) != 0) {
        *why = "npm install pm2 failed: " + r.Describe();
        return false;
      }
    }
    home_ = dir_ + "/home";
    fs::create_directories(home_);
    // `pm2 --version` may start no daemon, but kill whatever it did.
    *version = VersionOf({pm2_, "--version"}, Env());
    RunIn({pm2_, "kill"}, dir_, 120, Env());
    KillStrays();
    return true;
  }
  bool StartChildren(int k, std::string* error) override {
    if (!StartGod(error)) return false;
    Json apps = Json::array();
    for (int i = 1; i <= k; ++i)
      apps.push_back(App("pm2." + std::to_string(i), o_.child,
                         {hello_->path(), "pm2." + std::to_string(i)}));
    return StartApps(apps, "children", error);
  }
  bool PrepareFanout(int n, const std::string& marker,
                     std::string* error) override {
    if (!StartGod(error)) return false;
    Json apps = Json::array();
    for (int i = 1; i <= n; ++i)
      apps.push_back(App("s" + std::to_string(i), "/bin/sleep", {marker}));
    fanout_file_ = dir_ + "/fanout.json";
    return WriteFile(fanout_file_, Json{{"apps", apps}}.dump());
  }
  bool TriggerFanout(std::string* error) override {
    return StartTrigger({pm2_, "start", fanout_file_}, dir_ + "/pm2-start.log",
                        Env(), 300, error);
  }
  bool StartStorm(int m, std::string* error) override {
    if (!StartGod(error)) return false;
    Json apps = Json::array();
    for (int i = 1; i <= m; ++i) {
      Json app = App("c" + std::to_string(i), "/bin/false", {});
      app["restart_delay"] = 1000;  // about once a second, like runsv
      apps.push_back(app);
    }
    return StartApps(apps, "storm", error);
  }
  std::vector<std::string> StatusCommand() override { return {pm2_, "jlist"}; }
  bool StartLogWriter(int64_t lines, int line_bytes,
                      std::string* error) override {
    if (!StartGod(error)) return false;
    // PM2 itself does not rotate (that is the pm2-logrotate module): one
    // out file, stderr discarded.
    log_dir_ = dir_ + "/logs";
    fs::create_directories(log_dir_);
    Json app = App(
        "w1", o_.writer,
        {hello_->path(), std::to_string(lines), std::to_string(line_bytes)});
    app["out_file"] = log_dir_ + "/out.log";
    return StartApps(Json::array({app}), "log", error);
  }
  std::vector<std::string> LogFiles() override {
    return FilesIn(log_dir_, [](const std::string& f) {
      return f.starts_with("out.log");
    });
  }
  std::string LogSettings() const override {
    return "pm2: one fork-mode app (interpreter none), out_file FILE, "
           "merge_logs, no "
           "log_date_format; no rotation (PM2 has none without the "
           "pm2-logrotate module)";
  }
  std::vector<std::string> StatusEnv() override { return Env(); }
  pid_t Root() override { return god_; }
  void StopPhase() override {
    if (pm2_.empty()) return;
    FinishTrigger();  // a `pm2 start` still running
    RunIn({pm2_, "kill"}, dir_, 120, Env());
    ReapAdopted(&god_, 10);
    KillStraysAfter("pm2", "pm2 kill");
  }
  std::string Config() const override {
    return "pm2: PM2_HOME in the temp dir, God daemon started by `pm2 ping` "
           "before each phase; "
           "ecosystem file of N fork-mode apps (interpreter none, output to "
           "/dev/null, "
           "max_restarts 1000000); fan-out timed from the spawn of `pm2 start "
           "eco.json`; "
           "storm: restart_delay 1000";
  }

 private:
  std::vector<std::string> Env() const {
    return {"PM2_HOME=" + home_, "PM2_DISABLE_VERSION_CHECK=true"};
  }
  bool StartGod(std::string* error) {
    RunResult r = RunIn({pm2_, "ping"}, dir_, 60, Env());
    god_ = static_cast<pid_t>(
        std::atoi(support::ReadFileOrEmpty(home_ + "/pm2.pid").c_str()));
    if (!r.ok() || god_ <= 0) {
      *error = "pm2 ping: " + r.Describe();
      return false;
    }
    return true;
  }
  bool StartApps(const Json& apps, const std::string& tag, std::string* error) {
    const std::string file = dir_ + "/" + tag + ".json";
    WriteFile(file, Json{{"apps", apps}}.dump());
    RunResult r = RunIn({pm2_, "start", file}, dir_, 300, Env());
    if (!r.ok()) {
      *error = "pm2 start: " + r.Describe();
      return false;
    }
    return true;
  }

  std::string pm2_, home_, fanout_file_, log_dir_;
  pid_t god_ = -1;
};

}  // namespace

std::unique_ptr<Peer> NewPm2Peer(const Options& o, std::string dir,
                                 HelloSocket* hello) {
  return std::make_unique<Pm2Peer>("pm2", o, std::move(dir), hello);
}

}  // namespace relsupd::bench::supervise
