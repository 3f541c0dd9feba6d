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
RELSUPD_CODEC_SIZE(ProcessSpec, 216);
RELSUPD_CODEC_SIZE(ProcessFile, 120);
RELSUPD_CODEC_SIZE(ReleaseRun, 392);
RELSUPD_CODEC_SIZE(ExitInfo, 48);
RELSUPD_CODEC_SIZE(BackoffSnapshot, 48);
RELSUPD_CODEC_SIZE(ChildFds, 20);
RELSUPD_CODEC_SIZE(CaptureSnapshot, 80);
RELSUPD_CODEC_SIZE(InstanceSnapshot, 352);
RELSUPD_CODEC_SIZE(GroupSnapshot, 520);
RELSUPD_CODEC_SIZE(AppSnapshot, 584);
RELSUPD_CODEC_SIZE(SupervisorSnapshot, 96);
#endif

}  // namespace

// Each struct's fields, once: Encode() and Decode() (handover_cbor.h) run
// over them. Not in an unnamed namespace: the generic code finds them by
// argument-dependent lookup.

// ---- the process file and ReleaseRun --------------------------------------

template <Is<ReadyCheck> S, typename V>
void Fields(S& r, V&& v) {
  v("kind", r.kind);
  v("port", r.port);
  v("target", r.target);
}

template <Is<ProcessSpec> S, typename V>
void Fields(S& s, V&& v) {
  v("name", s.name);
  v("command", s.command);
  v("scale", s.scale);
  v("restart", s.restart);
  v("stop_signal", s.stop_signal);
  v("stop_timeout_ms", s.stop_timeout_ms);
  v("stop_mode", s.stop_mode);
  v("sockets", s.sockets);
  v("ready", s.ready);
  v("ready_timeout_ms", s.ready_timeout_ms);
  v("env", s.env);
}

template <Is<ReleaseCommand> S, typename V>
void Fields(S& c, V&& v) {
  v("command", c.command);
  v("timeout_ms", c.timeout_ms);
}

template <Is<ProcessFile> S, typename V>
void Fields(S& f, V&& v) {
  v("source", f.source);
  v("processes", f.processes);
  v("release", f.release);
}

template <Is<ReleaseRun> S, typename V>
void Fields(S& r, V&& v) {
  v("app", r.app);
  v("number", r.number);
  v("slot", r.slot);
  v("config", r.config);
  v("process_file", r.processes);
  v("uid", r.uid);
  v("gid", r.gid);
  v("groups", r.groups);
  v("user", r.user);
  v("home", r.home);
  v("socket_fds", AtLeast(r.socket_fds, -1));
}

// ---- instances and groups ---------------------------------------------------

template <Is<ExitInfo> S, typename V>
void Fields(S& e, V&& v) {
  v("time_ms", e.time_ms);
  v("status", e.status);
  v("signal", e.signal);
  v("stop", e.stop);
  v("stop_signal", e.stop_signal);
  v("killed", e.killed);
  v("stop_timeout_ms", e.stop_timeout_ms);
  v("ready_timeout_ms", e.ready_timeout_ms);
}

template <Is<BackoffSnapshot> S, typename V>
void Fields(S& b, V&& v) {
  v("started_ms", b.started_ms);
  v("next_delay_ms", b.next_delay_ms);
  v("restarts", b.restarts);
  v("exits", b.exits);
}

template <Is<ChildFds> S, typename V>
void Fields(S& c, V&& v) {
  v("pid", c.pid);
  v("pidfd", c.pidfd);
  v("out_fd", c.out_fd);
  v("err_fd", c.err_fd);
  v("paused", c.paused);
}

template <Is<CaptureSnapshot> S, typename V>
void Fields(S& c, V&& v) {
  v("out_partial", AsBytes(c.out_partial, kMaxPartialLineBytes));
  v("err_partial", AsBytes(c.err_partial, kMaxPartialLineBytes));
  v("tokens", c.tokens);
  v("tokens_ms", c.tokens_ms);
}

template <Is<InstanceSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  v("type", s.type);
  v("index", s.index);
  v("leaving", s.leaving);
  v("state", s.state);
  v("timer_deadline_mono_ms", s.timer_deadline_mono_ms);
  v("backoff", s.backoff);
  v("backoff_delay_ms", s.backoff_delay_ms);
  v("started_ms", s.started_ms);
  v("stop_cause", s.stop_cause);
  v("stop_sent_ms", s.stop_sent_ms);
  v("killed", s.killed);
  v("cgroup_dir", s.cgroup_dir);
  v("exits", s.exits);
  v("status_text", s.status_text);
  v("type_failed", s.type_failed);
  v("child", s.child);
  v("capture", s.capture);
}

template <Is<GroupSnapshot> S, typename V>
void Fields(S& g, V&& v) {
  v("run", g.run);
  v("formation", AtLeast(g.formation, 0));
  v("stopping", g.stopping);
  v("failed_types", g.failed_types);
  v("instances", g.instances);
}

template <Is<AppSnapshot> S, typename V>
void Fields(S& a, V&& v) {
  v("app", a.app);
  v("active", a.active);
  v("retiring", a.retiring);
}

// ---- the supervisor ---------------------------------------------------------

template <Is<ReapEntry> S, typename V>
void Fields(S& r, V&& v) {
  v("pid", r.pid);
  v("pidfd", r.pidfd);
}

template <Is<CgroupSnapshot> S, typename V>
void Fields(S& c, V&& v) {
  v("root", c.root);
  v("next", c.next);
}

template <Is<SupervisorSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  v("apps", s.apps);
  v("reap", s.reap);
  v("cgroups", s.cgroups);
}

Json Encode(const SupervisorSnapshot& s) { return EncodeFields(s); }

void Decode(const Json& v, const std::string& path, SupervisorSnapshot* s) {
  DecodeFields(v, path, s);
}

}  // namespace relsupd::handover_cbor
