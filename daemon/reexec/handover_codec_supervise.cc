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

// ---- the process file and ReleaseRun --------------------------------------

Json ToCbor(const ProcessSpec& s) {
  return {{"name", s.name},
          {"command", s.command},
          {"scale", s.scale},
          {"restart", NameOf(kRestarts, s.restart)},
          {"stop_signal", s.stop_signal},
          {"stop_timeout_ms", s.stop_timeout_ms},
          {"stop_mode", NameOf(kStopModes, s.stop_mode)},
          {"sockets", s.sockets},
          {"ready",
           {{"kind", NameOf(kReadyKinds, s.ready.kind)},
            {"port", s.ready.port},
            {"target", s.ready.target}}},
          {"ready_timeout_ms", s.ready_timeout_ms},
          {"env", s.env}};
}

void FromCbor(const Json& j, const std::string& path, ProcessSpec* s) {
  CheckObject(j, path);
  ReadString(j, "name", path, &s->name);
  ReadString(j, "command", path, &s->command);
  ReadInt(j, "scale", path, &s->scale);
  ReadEnum(j, "restart", path, kRestarts, &s->restart);
  ReadInt(j, "stop_signal", path, &s->stop_signal);
  ReadInt(j, "stop_timeout_ms", path, &s->stop_timeout_ms);
  ReadEnum(j, "stop_mode", path, kStopModes, &s->stop_mode);
  ReadArray(j, "sockets", path, [&](const Json& v, const std::string& p) {
    if (!v.is_string()) Fail(p, "not a text string");
    s->sockets.push_back(v.get<std::string>());
  });
  if (const Json* r = ReadObject(j, "ready", path)) {
    ReadEnum(*r, "kind", Sub(path, "ready"), kReadyKinds, &s->ready.kind);
    ReadInt(*r, "port", Sub(path, "ready"), &s->ready.port);
    ReadString(*r, "target", Sub(path, "ready"), &s->ready.target);
  }
  ReadInt(j, "ready_timeout_ms", path, &s->ready_timeout_ms);
  ReadMap(j, "env", path, [&](const std::string& k, const Json& v, const std::string& p) {
    if (!v.is_string()) Fail(p, "not a text string");
    s->env[k] = v.get<std::string>();
  });
}

Json ToCbor(const ReleaseRun& r) {
  Json processes = Json::object();
  for (const auto& [name, spec] : r.processes.processes) processes[name] = ToCbor(spec);
  Json j = {{"app", r.app},
            {"number", r.number},
            {"slot", r.slot},
            {"config", r.config},
            {"process_file",
             {{"source", r.processes.source},
              {"processes", processes},
              {"release",
               {{"command", r.processes.release.command},
                {"timeout_ms", r.processes.release.timeout_ms}}}}},
            {"groups", r.groups},
            {"user", r.user},
            {"home", r.home},
            {"socket_fds", r.socket_fds}};
  if (r.uid) j["uid"] = *r.uid;
  if (r.gid) j["gid"] = *r.gid;
  return j;
}

void FromCbor(const Json& j, const std::string& path, ReleaseRun* r) {
  CheckObject(j, path);
  ReadString(j, "app", path, &r->app);
  ReadInt(j, "number", path, &r->number);
  ReadString(j, "slot", path, &r->slot);
  ReadStrings(j, "config", path, &r->config);
  if (const Json* pf = ReadObject(j, "process_file", path)) {
    const std::string p = Sub(path, "process_file");
    ReadString(*pf, "source", p, &r->processes.source);
    ReadMap(*pf, "processes", p, [&](const std::string& k, const Json& v, const std::string& q) {
      FromCbor(v, q, &r->processes.processes[k]);
    });
    if (const Json* rel = ReadObject(*pf, "release", p)) {
      ReadString(*rel, "command", Sub(p, "release"), &r->processes.release.command);
      ReadInt(*rel, "timeout_ms", Sub(p, "release"), &r->processes.release.timeout_ms);
    }
  }
  if (Get(j, "uid") != nullptr) ReadInt(j, "uid", path, &r->uid.emplace());
  if (Get(j, "gid") != nullptr) ReadInt(j, "gid", path, &r->gid.emplace());
  ReadArray(j, "groups", path, [&](const Json& v, const std::string& p) {
    r->groups.push_back(static_cast<gid_t>(IntValue(v, p, 0, std::numeric_limits<gid_t>::max())));
  });
  ReadString(j, "user", path, &r->user);
  ReadString(j, "home", path, &r->home);
  ReadMap(j, "socket_fds", path, [&](const std::string& k, const Json& v, const std::string& p) {
    r->socket_fds[k] = static_cast<int>(IntValue(v, p, -1, std::numeric_limits<int>::max()));
  });
}

// ---- instances and groups ---------------------------------------------------

Json ToCbor(const ExitInfo& e) {
  return {{"time_ms", e.time_ms},         {"status", e.status},
          {"signal", e.signal},           {"stop", NameOf(kStopCauses, e.stop)},
          {"stop_signal", e.stop_signal}, {"killed", e.killed},
          {"stop_timeout_ms", e.stop_timeout_ms}, {"ready_timeout_ms", e.ready_timeout_ms}};
}

void FromCbor(const Json& j, const std::string& path, ExitInfo* e) {
  CheckObject(j, path);
  ReadInt(j, "time_ms", path, &e->time_ms);
  ReadInt(j, "status", path, &e->status);
  ReadInt(j, "signal", path, &e->signal);
  ReadEnum(j, "stop", path, kStopCauses, &e->stop);
  ReadInt(j, "stop_signal", path, &e->stop_signal);
  ReadBool(j, "killed", path, &e->killed);
  ReadInt(j, "stop_timeout_ms", path, &e->stop_timeout_ms);
  ReadInt(j, "ready_timeout_ms", path, &e->ready_timeout_ms);
}

Json ToCbor(const InstanceSnapshot& s) {
  Json exits = Json::array();
  for (const ExitInfo& e : s.exits) exits.push_back(ToCbor(e));
  Json j = {{"type", s.type},
            {"index", s.index},
            {"leaving", s.leaving},
            {"state", NameOf(kStates, s.state)},
            {"backoff",
             {{"started_ms", s.backoff.started_ms},
              {"next_delay_ms", s.backoff.next_delay_ms},
              {"restarts", s.backoff.restarts},
              {"exits", s.backoff.exits}}},
            {"backoff_delay_ms", s.backoff_delay_ms},
            {"started_ms", s.started_ms},
            {"stop_cause", NameOf(kStopCauses, s.stop_cause)},
            {"stop_sent_ms", s.stop_sent_ms},
            {"killed", s.killed},
            {"cgroup_dir", s.cgroup_dir},
            {"exits", exits},
            {"status_text", s.status_text},
            {"type_failed", s.type_failed},
            {"capture",
             {{"out_partial", Bytes(s.capture.out_partial)},
              {"err_partial", Bytes(s.capture.err_partial)},
              {"tokens", s.capture.tokens},
              {"tokens_ms", s.capture.tokens_ms}}}};
  if (s.timer_deadline_mono_ms) j["timer_deadline_mono_ms"] = *s.timer_deadline_mono_ms;
  if (s.child)
    j["child"] = {{"pid", s.child->pid},
                  {"pidfd", s.child->pidfd},
                  {"out_fd", s.child->out_fd},
                  {"err_fd", s.child->err_fd},
                  {"paused", s.child->paused}};
  return j;
}

void FromCbor(const Json& j, const std::string& path, BackoffSnapshot* b) {
  CheckObject(j, path);
  ReadInt(j, "started_ms", path, &b->started_ms);
  ReadInt(j, "next_delay_ms", path, &b->next_delay_ms);
  ReadInt(j, "restarts", path, &b->restarts);
  ReadArray(j, "exits", path, [&](const Json& v, const std::string& p) {
    b->exits.push_back(
        IntValue(v, p, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  });
}

void FromCbor(const Json& j, const std::string& path, ChildFds* c) {
  CheckObject(j, path);
  ReadInt(j, "pid", path, &c->pid);
  ReadInt(j, "pidfd", path, &c->pidfd);
  ReadInt(j, "out_fd", path, &c->out_fd);
  ReadInt(j, "err_fd", path, &c->err_fd);
  ReadBool(j, "paused", path, &c->paused);
}

void FromCbor(const Json& j, const std::string& path, CaptureSnapshot* c) {
  CheckObject(j, path);
  ReadBytes(j, "out_partial", path, kMaxPartialLineBytes, &c->out_partial);
  ReadBytes(j, "err_partial", path, kMaxPartialLineBytes, &c->err_partial);
  ReadDouble(j, "tokens", path, &c->tokens);
  ReadInt(j, "tokens_ms", path, &c->tokens_ms);
}

void FromCbor(const Json& j, const std::string& path, InstanceSnapshot* s) {
  CheckObject(j, path);
  ReadString(j, "type", path, &s->type);
  ReadInt(j, "index", path, &s->index);
  ReadBool(j, "leaving", path, &s->leaving);
  ReadEnum(j, "state", path, kStates, &s->state);
  if (Get(j, "timer_deadline_mono_ms") != nullptr)
    ReadInt(j, "timer_deadline_mono_ms", path, &s->timer_deadline_mono_ms.emplace());
  if (const Json* b = ReadObject(j, "backoff", path)) FromCbor(*b, Sub(path, "backoff"), &s->backoff);
  ReadInt(j, "backoff_delay_ms", path, &s->backoff_delay_ms);
  ReadInt(j, "started_ms", path, &s->started_ms);
  ReadEnum(j, "stop_cause", path, kStopCauses, &s->stop_cause);
  ReadInt(j, "stop_sent_ms", path, &s->stop_sent_ms);
  ReadBool(j, "killed", path, &s->killed);
  ReadString(j, "cgroup_dir", path, &s->cgroup_dir);
  ReadArray(j, "exits", path,
            [&](const Json& v, const std::string& p) { FromCbor(v, p, &s->exits.emplace_back()); });
  ReadString(j, "status_text", path, &s->status_text);
  ReadBool(j, "type_failed", path, &s->type_failed);
  if (const Json* c = ReadObject(j, "child", path)) FromCbor(*c, Sub(path, "child"), &s->child.emplace());
  if (const Json* c = ReadObject(j, "capture", path)) FromCbor(*c, Sub(path, "capture"), &s->capture);
}

Json ToCbor(const GroupSnapshot& g) {
  Json instances = Json::array();
  for (const InstanceSnapshot& i : g.instances) instances.push_back(ToCbor(i));
  return {{"run", ToCbor(g.run)},
          {"formation", g.formation},
          {"stopping", g.stopping},
          {"failed_types", g.failed_types},
          {"instances", instances}};
}

void FromCbor(const Json& j, const std::string& path, GroupSnapshot* g) {
  CheckObject(j, path);
  if (const Json* r = ReadObject(j, "run", path)) FromCbor(*r, Sub(path, "run"), &g->run);
  ReadMap(j, "formation", path, [&](const std::string& k, const Json& v, const std::string& p) {
    g->formation[k] = static_cast<int>(IntValue(v, p, 0, std::numeric_limits<int>::max()));
  });
  ReadBool(j, "stopping", path, &g->stopping);
  ReadArray(j, "failed_types", path, [&](const Json& v, const std::string& p) {
    if (!v.is_string()) Fail(p, "not a text string");
    g->failed_types.insert(v.get<std::string>());
  });
  ReadArray(j, "instances", path, [&](const Json& v, const std::string& p) {
    FromCbor(v, p, &g->instances.emplace_back());
  });
}

Json ToCbor(const AppSnapshot& a) {
  Json retiring = Json::array();
  for (const GroupSnapshot& g : a.retiring) retiring.push_back(ToCbor(g));
  Json j = {{"app", a.app}, {"retiring", retiring}};
  if (a.active) j["active"] = ToCbor(*a.active);
  return j;
}

void FromCbor(const Json& j, const std::string& path, AppSnapshot* a) {
  CheckObject(j, path);
  ReadString(j, "app", path, &a->app);
  if (const Json* g = ReadObject(j, "active", path)) FromCbor(*g, Sub(path, "active"), &a->active.emplace());
  ReadArray(j, "retiring", path, [&](const Json& v, const std::string& p) {
    FromCbor(v, p, &a->retiring.emplace_back());
  });
}

}  // namespace

Json ToCbor(const SupervisorSnapshot& s) {
  Json apps = Json::array();
  for (const AppSnapshot& a : s.apps) apps.push_back(ToCbor(a));
  Json reap = Json::array();
  for (const ReapEntry& r : s.reap) reap.push_back({{"pid", r.pid}, {"pidfd", r.pidfd}});
  Json j = {{"apps", apps}, {"reap", reap}};
  if (s.cgroups) j["cgroups"] = {{"root", s.cgroups->root}, {"next", s.cgroups->next}};
  return j;
}

void FromCbor(const Json& j, const std::string& path, SupervisorSnapshot* s) {
  CheckObject(j, path);
  ReadArray(j, "apps", path,
            [&](const Json& v, const std::string& p) { FromCbor(v, p, &s->apps.emplace_back()); });
  ReadArray(j, "reap", path, [&](const Json& v, const std::string& p) {
    CheckObject(v, p);
    ReapEntry& r = s->reap.emplace_back();
    ReadInt(v, "pid", p, &r.pid);
    ReadInt(v, "pidfd", p, &r.pidfd);
  });
  if (const Json* c = ReadObject(j, "cgroups", path)) {
    CgroupSnapshot& cg = s->cgroups.emplace();
    ReadString(*c, "root", Sub(path, "cgroups"), &cg.root);
    ReadInt(*c, "next", Sub(path, "cgroups"), &cg.next);
  }
}

}  // namespace relsupd::handover_cbor
