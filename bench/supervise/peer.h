// A compared supervisor (relsupd, runit, supervisord, PM2) as the phases
// drive it, and the figures one run measured of it.
//
// One Peer per compared supervisor, made by main() with New<Name>Peer
// (the helpers every peer uses are in peer.cc),
// owns every process it starts (by pid) and stops them in StopPhase and
// Teardown, which its owner calls before it destroys it (RunPeer does,
// whatever happened); it keeps references to the Options and the hello
// socket, which outlive it. Single-threaded.

#ifndef RELSUPD_BENCH_SUPERVISE_PEER_H_
#define RELSUPD_BENCH_SUPERVISE_PEER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/supervise/hello_socket.h"
#include "bench/supervise/options.h"

namespace relsupd::bench::supervise {

struct PeerResult {
  std::string name;
  std::string version;
  std::string na;  // the whole peer is n/a, why
  // Restart latency.
  std::vector<double> restart_ms;
  std::vector<double> child_wait_ms;  // the replacement's run-queue wait
  std::vector<double> child_cpu_ms;   // and its CPU time, fork to main()
  double restart_sup_cpu_us = -1;     // supervisor CPU per restart
  int restart_timeouts = 0;
  std::string restart_na;
  // Fan-out and memory.
  double fanout_s = -1;
  std::string fanout_how;
  std::string fanout_na;
  double trigger_ms =
      -1;  // the command that triggered it (ctl scale, pm2 start)
  double fanout_sup_cpu_s = -1;  // supervisor CPU from trigger to the last exec
  double root_rss_kb = -1;
  double root_rss_idle_kb = -1;  // before the fan-out, where the root ran
  double root_anon_kb = -1, root_file_kb = -1;  // RssAnon, RssFile
  double sup_pss_kb = -1;
  int sup_procs = 0;
  double tree_pss_kb = -1;
  int tree_procs = 0;
  // Storm.
  std::string storm_na;
  double storm_cpu = -1;  // fraction of one core
  int storm_sup_procs = 0;
  std::vector<double> status_ms;
  std::vector<double> status_cpu_ms;  // the status command's own CPU
  std::vector<double> direct_ms;      // the query over the socket, no command
  int status_failures = 0;
  std::string status_first_failure;
  std::string status_cmd;
  // Log throughput.
  std::string log_na;
  double log_mbps =
      -1;  // payload MB / s, first write until the last line on disk
  double log_last_s = -1;  // first write until the last line on disk
  double log_writer_s =
      -1;  // first write until the writer's last write returned
  double log_sup_cpu_s = -1;   // supervisor CPU meanwhile (the writer excluded)
  double log_sup_wait_s = -1;  // and its threads' run-queue wait
  int log_sup_procs = 0;
  int64_t log_lost = -1;  // sequence numbers never seen
  int64_t log_dup = 0;    // seen more than once (extra copies)
  int64_t log_damaged =
      0;                  // captured lines that are not a line the writer wrote
  int64_t log_other = 0;  // relsupd: records of other processes, not counted
  int64_t log_disk_bytes = 0;
  int log_files = 0;
  std::string log_settings;
  std::string log_timeout;  // set: the last line never reached the files, why
  // ctl: the status command as a whole process, nothing else running.
  std::string ctl_na;
  std::string ctl_cmd;
  std::vector<double> ctl_ms;      // spawn to waitpid
  std::vector<double> ctl_cpu_ms;  // its own CPU time
};

class Peer {
 public:
  Peer(std::string name, const Options& o, std::string dir, HelloSocket* hello)
      : name_(std::move(name)), o_(o), dir_(std::move(dir)), hello_(hello) {}
  virtual ~Peer() = default;
  const std::string& name() const { return name_; }

  // Installs or finds the peer and starts what lives for all phases.
  // False: n/a, with why.
  virtual bool Setup(std::string* why, std::string* version) = 0;
  // Phase 1: `k` instances of supervise_child (ids distinct), running.
  virtual bool StartChildren(int k, std::string* error) = 0;
  // Phase 2: writes what the fan-out needs, so that Trigger only starts it.
  virtual bool PrepareFanout(int n, const std::string& marker,
                             std::string* error) = 0;
  // Starts the fan-out (returns at once; the CLI it may run, started with
  // StartTrigger, is reaped later by FinishTrigger).
  virtual bool TriggerFanout(std::string* error) = 0;
  // Waits for what StartTrigger ran; its wall time in ms (-1 when none or
  // when it failed).
  double FinishTrigger();
  // Phase 3: `m` services that exit 1 at once and restart forever.
  virtual bool StartStorm(int m, std::string* error) = 0;
  // The peer's status command over the services of the current phase
  // (the storm's, or StartChildren's for the ctl phase).
  virtual std::vector<std::string> StatusCommand() = 0;
  virtual std::vector<std::string> StatusEnv() { return {}; }
  // The same query without the command's own start-up, where the peer has
  // a socket protocol the benchmark speaks (relsupd: JSON-RPC `ps`): its
  // wall time in ms, -1 when not applicable or failed.
  virtual double DirectStatusMs() { return -1; }
  // The supervisor's root process (its tree is measured).
  virtual pid_t Root() = 0;
  // Phase 5: one log_writer writing `lines` lines of `line_bytes`, its
  // stdout captured to files by the peer.
  virtual bool StartLogWriter(int64_t lines, int line_bytes,
                              std::string* error) = 0;
  // The files the writer's output went to (current and rotated), as they
  // are now, oldest first (a line may be split across two of them: read
  // them as one stream). LogIsRecords: relsupd's records (log_record.h), the
  // writer's line in their text.
  virtual std::vector<std::string> LogFiles() = 0;
  virtual bool LogIsRecords() const { return false; }
  // How the phase captures, for the notes.
  virtual std::string LogSettings() const = 0;
  // Stops everything the phase started (by pid) and waits for it.
  virtual void StopPhase() = 0;
  // Stops what Setup started (and what a phase left). Idempotent.
  virtual void Teardown() { StopPhase(); }
  // Notes printed under the table.
  virtual std::string Config() const = 0;

 protected:
  // Finds each program on PATH into its string; false, with `missing` in
  // *why, when one is not there.
  bool FindPrograms(
      const std::vector<std::pair<std::string*, const char*>>& programs,
      const char* missing, std::string* why);
  // The last line `args` printed (run in the peer's dir, `env` added); "?"
  // when it failed.
  std::string VersionOf(const std::vector<std::string>& args,
                        const std::vector<std::string>& env = {});
  // Starts the fan-out's trigger command (output to `log`) and its clock;
  // FinishTrigger waits up to `timeout_s` for it (0: without a limit), then
  // kills it.
  bool StartTrigger(const std::vector<std::string>& args,
                    const std::string& log, const std::vector<std::string>& env,
                    double timeout_s, std::string* error);

  std::string name_;
  const Options& o_;
  std::string dir_;
  HelloSocket* hello_;

 private:
  pid_t trigger_ = -1;
  int64_t trigger_t0_ = 0;
  double trigger_timeout_s_ = 0;
};

// One per file: peer_relsupd.cc, peer_runit.cc, peer_supervisord.cc,
// peer_pm2.cc. `dir` is the peer's own directory in the temporary dir.
std::unique_ptr<Peer> NewRelsupdPeer(const Options& o, std::string dir,
                                     HelloSocket* hello);
std::unique_ptr<Peer> NewRunitPeer(const Options& o, std::string dir,
                                   HelloSocket* hello);
std::unique_ptr<Peer> NewSupervisordPeer(const Options& o, std::string dir,
                                         HelloSocket* hello);
std::unique_ptr<Peer> NewPm2Peer(const Options& o, std::string dir,
                                 HelloSocket* hello);

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_PEER_H_
