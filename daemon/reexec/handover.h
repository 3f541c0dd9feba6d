#pragma once
// HandoverRecord: everything the running daemon hands to the image it
// execs (docs/reexec.md §1, §2.2), as plain typed data.
//
// The modules build it (each module's Export()) and take it back (Adopt());
// handover_codec.cc turns it into the CBOR payload and back, and memfd.cc
// frames and seals that payload. Nothing else knows the encoding.
//
// fds are plain numbers and owned by no struct here (snapshot.h explains
// who owns them when). A field added here must be added to the codec and
// to the round-trip test (tests/unit/test_handover_codec.cc); its default
// must be the old behaviour, since an older writer leaves it out. Any
// thread.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/activate/app_sockets.h"
#include "daemon/activate/switcher.h"
#include "daemon/config/daemon_config.h"
#include "daemon/ledger/ledger.h"
#include "daemon/reexec/handover_version.h"
#include "daemon/supervise/snapshot.h"

namespace relsupd {

// The daemon itself (main.cc's Daemon, DaemonContext).
struct DaemonSnapshot {
  std::string self_path;      // the binary the daemon was started from
  std::string supervisor_id;  // SupervisorId(state_dir): dev:ino
  int64_t reexecs = 0;        // re-execs since the cold start
  int64_t first_started_mono_ms = 0;
  // The RLIMIT_NOFILE the daemon was started with, for its children.
  uint64_t child_nofile_soft = 0;
  uint64_t child_nofile_hard = 0;
  bool operator==(const DaemonSnapshot&) const = default;
};

// The daemon-wide fds that cross the exec (-1: none).
struct DaemonFds {
  int lock = -1;      // the state dir's flock
  int listener = -1;  // the control socket's listener
  int self_exe = -1;  // the old binary, for exec-back (§5.3)
  bool operator==(const DaemonFds&) const = default;
};

// The control connection whose daemon.reexec the new image answers.
struct RequestSnapshot {
  int conn_fd = -1;
  std::string rpc_id;  // the JSON-RPC id as JSON text ("7", "\"a\"")
  pid_t pid = 0;       // the peer's SO_PEERCRED
  uid_t uid = 0;
  gid_t gid = 0;
  bool kill_one_offs = false;
  bool operator==(const RequestSnapshot&) const = default;
};

struct HandoverRecord {
  // The format version the record was written in (the header's); the
  // decoder sets it, the upgrade steps bring the record to the current one.
  int format_version = kHandoverVersion;
  std::string writer;  // the writer's relsupd version, "0.9.0"
  int64_t written_mono_ms = 0;
  Actor actor;  // who asked: the requester, or {0, "SIGUSR2"}
  DaemonSnapshot daemon;
  DaemonConfig config;  // the effective config, the fallback (§1.1)
  DaemonFds fds;
  std::optional<NotifySnapshot> notify;  // unset: no notify socket
  std::optional<RequestSnapshot> request;  // unset: SIGUSR2
  std::vector<AppSocketSnapshot> app_sockets;
  SupervisorSnapshot supervisor;  // apps, reap list, cgroups
  std::map<std::string, SwitchOutcome> switch_outcomes;  // by app
  int64_t next_switch_id = 0;
  int64_t one_offs_next_id = 0;
  std::map<std::string, uint64_t> log_seq;  // by app
  bool operator==(const HandoverRecord&) const = default;
};

}  // namespace relsupd
