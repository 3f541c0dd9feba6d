// The supervise part of the handover record (supervise/snapshot.h) in
// CBOR items: ReleaseRun with its process file, groups, instances, the reap
// list and the cgroup tree.
#include "daemon/reexec/handover_cbor.h"
#include "daemon/reexec/handover_codec.h"

namespace relsupd::handover_cbor {
namespace {

// Drift guard (docs/reexec.md §7.1): a field added to one of these structs
// changes its size and stops the build here. Add the field to this codec
// and to tests/unit/test_handover_codec.cc (Filled, Check*), then update
// the size. Sizes of x86_64 with libstdc++; other targets skip the check.
#if defined(__x86_64__) && defined(__GLIBCXX__)
RELSUPD_CODEC_SIZE(HealthCheck, 64);
RELSUPD_CODEC_SIZE(ProcessLimits, 32);
RELSUPD_CODEC_SIZE(ProcessSpec, 320);
RELSUPD_CODEC_SIZE(ProcessFile, 120);
RELSUPD_CODEC_SIZE(ReleaseRun, 392);
RELSUPD_CODEC_SIZE(ExitInfo, 80);
RELSUPD_CODEC_SIZE(BackoffSnapshot, 48);
RELSUPD_CODEC_SIZE(ChildFds, 20);
RELSUPD_CODEC_SIZE(CaptureSnapshot, 80);
RELSUPD_CODEC_SIZE(InstanceSnapshot, 384);
RELSUPD_CODEC_SIZE(GroupSnapshot, 520);
RELSUPD_CODEC_SIZE(AppSnapshot, 584);
RELSUPD_CODEC_SIZE(SupervisorSnapshot, 96);
#endif

}  // namespace

// Each struct's fields, once: Encode() and Decode() (handover_cbor.h) run
// over them. Not in an unnamed namespace: the generic code finds them by
// argument-dependent lookup.

// ---- the process file and ReleaseRun --------------------------------------

RELSUPD_CODEC_FIELDS(ReadyCheck, kind, port, target)

RELSUPD_CODEC_FIELDS(HealthCheck, check, interval_ms, timeout_ms, failures)

RELSUPD_CODEC_FIELDS(ProcessLimits, memory_bytes, pids, nofile, cpu)

RELSUPD_CODEC_FIELDS(ProcessSpec, name, command, scale, restart, stop_signal, stop_timeout_ms,
                     stop_mode, sockets, ready, ready_timeout_ms, env, health, watchdog_ms, limits)

RELSUPD_CODEC_FIELDS(ReleaseCommand, command, timeout_ms)

RELSUPD_CODEC_FIELDS(ProcessFile, source, processes, release)

template <Is<ReleaseRun> S, typename V>
void Fields(S& s, V&& v) {
  RELSUPD_FIELDS(app, number, slot, config, uid, gid, groups, user, home);
  v("process_file", s.processes);
  v("socket_fds", AtLeast(s.socket_fds, -1));
}

// ---- instances and groups ---------------------------------------------------

RELSUPD_CODEC_FIELDS(ExitInfo, time_ms, status, signal, stop, stop_signal, killed, stop_timeout_ms,
                     ready_timeout_ms, fault)

RELSUPD_CODEC_FIELDS(BackoffSnapshot, started_ms, next_delay_ms, restarts, exits)

RELSUPD_CODEC_FIELDS(ChildFds, pid, pidfd, out_fd, err_fd, paused)

template <Is<CaptureSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  RELSUPD_FIELDS(tokens, tokens_ms);
  v("out_partial", AsBytes(s.out_partial, kMaxPartialLineBytes));
  v("err_partial", AsBytes(s.err_partial, kMaxPartialLineBytes));
}

RELSUPD_CODEC_FIELDS(InstanceSnapshot, type, index, leaving, state, timer_deadline_mono_ms, backoff,
                     backoff_delay_ms, started_ms, stop_cause, stop_sent_ms, killed, cgroup_dir, fault,
                     exits, status_text, type_failed, child, capture)

template <Is<GroupSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  RELSUPD_FIELDS(run, stopping, failed_types, instances);
  v("formation", AtLeast(s.formation, 0));
}

RELSUPD_CODEC_FIELDS(AppSnapshot, app, active, retiring)

// ---- the supervisor ---------------------------------------------------------

RELSUPD_CODEC_FIELDS(ReapEntry, pid, pidfd)

RELSUPD_CODEC_FIELDS(CgroupSnapshot, root, next)

RELSUPD_CODEC_FIELDS(SupervisorSnapshot, apps, reap, cgroups)

Json Encode(const SupervisorSnapshot& s) { return EncodeFields(s); }

void Decode(const Json& v, const Path& path, SupervisorSnapshot* s) {
  DecodeFields(v, path, s);
}

}  // namespace relsupd::handover_cbor
