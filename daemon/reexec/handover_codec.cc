#include "daemon/reexec/handover_codec.h"

#include <cstdint>
#include <exception>
#include <string>

#include "daemon/reexec/handover_cbor.h"

namespace relsupd {

using namespace handover_cbor;  // NOLINT: this file's own vocabulary

namespace {

// Drift guard (docs/reexec.md §7.1): a field added to one of these structs
// changes its size and stops the build here. Add the field to this codec
// and to tests/unit/test_handover_codec.cc (Filled, Check*), then update
// the size. Sizes of x86_64 with libstdc++; other targets skip the check.
#if defined(__x86_64__) && defined(__GLIBCXX__)
RELSUPD_CODEC_SIZE(DaemonConfig, 320);
RELSUPD_CODEC_SIZE(SwitchOutcome, 96);
RELSUPD_CODEC_SIZE(HandoverRecord, 872);
#endif

// A first pass that only counts nesting: from_cbor recurses once per level,
// so a hostile record must be refused before it runs.
struct DepthCheck {
  using Binary = Json::binary_t;
  int depth = 0;
  bool too_deep = false;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(int64_t) { return true; }
  bool number_unsigned(uint64_t) { return true; }
  bool number_float(double, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Binary&) { return true; }
  bool key(std::string&) { return true; }
  bool start_object(size_t) { return Enter(); }
  bool start_array(size_t) { return Enter(); }
  bool end_object() { return --depth, true; }
  bool end_array() { return --depth, true; }
  bool parse_error(size_t, const std::string&, const std::exception&) { return false; }
  bool Enter() {
    too_deep = ++depth > kMaxHandoverDepth;
    return !too_deep;
  }
};

Json ToCbor(const DaemonConfig& c) {
  return {{"state_dir", c.state_dir},
          {"socket", c.socket},
          {"socket_mode", c.socket_mode},
          {"socket_group", c.socket_group},
          {"admin_group", c.admin_group},
          {"log_level", c.log_level},
          {"max_request_bytes", c.max_request_bytes},
          {"max_artifact_bytes", c.max_artifact_bytes},
          {"max_unpacked_bytes", c.max_unpacked_bytes},
          {"max_entries", c.max_entries},
          {"max_compression_ratio", c.max_compression_ratio},
          {"cgroup", c.cgroup},
          {"restart_initial_delay_ms", c.restart_initial_delay_ms},
          {"restart_max_delay_ms", c.restart_max_delay_ms},
          {"restart_reset_after_ms", c.restart_reset_after_ms},
          {"crash_limit", c.crash_limit},
          {"crash_window_ms", c.crash_window_ms},
          {"log_max_file_bytes", c.log_max_file_bytes},
          {"log_max_files", c.log_max_files},
          {"log_rate_limit", c.log_rate_limit},
          {"app_uid_min", c.app_uid_min},
          {"app_uid_max", c.app_uid_max},
          {"allow_root_apps", c.allow_root_apps}};
}

void FromCbor(const Json& j, const std::string& path, DaemonConfig* c) {
  CheckObject(j, path);
  ReadString(j, "state_dir", path, &c->state_dir);
  ReadString(j, "socket", path, &c->socket);
  ReadInt(j, "socket_mode", path, &c->socket_mode);
  ReadString(j, "socket_group", path, &c->socket_group);
  ReadString(j, "admin_group", path, &c->admin_group);
  ReadString(j, "log_level", path, &c->log_level);
  ReadInt(j, "max_request_bytes", path, &c->max_request_bytes);
  ReadInt(j, "max_artifact_bytes", path, &c->max_artifact_bytes);
  ReadInt(j, "max_unpacked_bytes", path, &c->max_unpacked_bytes);
  ReadInt(j, "max_entries", path, &c->max_entries);
  ReadInt(j, "max_compression_ratio", path, &c->max_compression_ratio);
  ReadString(j, "cgroup", path, &c->cgroup);
  ReadInt(j, "restart_initial_delay_ms", path, &c->restart_initial_delay_ms);
  ReadInt(j, "restart_max_delay_ms", path, &c->restart_max_delay_ms);
  ReadInt(j, "restart_reset_after_ms", path, &c->restart_reset_after_ms);
  ReadInt(j, "crash_limit", path, &c->crash_limit);
  ReadInt(j, "crash_window_ms", path, &c->crash_window_ms);
  ReadInt(j, "log_max_file_bytes", path, &c->log_max_file_bytes);
  ReadInt(j, "log_max_files", path, &c->log_max_files);
  ReadInt(j, "log_rate_limit", path, &c->log_rate_limit);
  ReadInt(j, "app_uid_min", path, &c->app_uid_min);
  ReadInt(j, "app_uid_max", path, &c->app_uid_max);
  ReadBool(j, "allow_root_apps", path, &c->allow_root_apps);
}

Json ToCbor(const SwitchOutcome& o) {
  return {{"id", o.id},       {"ok", o.ok},     {"live", o.live},
          {"message", o.message}, {"note", o.note}, {"live_ready", o.live_ready}};
}

void FromCbor(const Json& j, const std::string& path, SwitchOutcome* o) {
  CheckObject(j, path);
  ReadInt(j, "id", path, &o->id);
  ReadBool(j, "ok", path, &o->ok);
  ReadInt(j, "live", path, &o->live);
  ReadString(j, "message", path, &o->message);
  ReadString(j, "note", path, &o->note);
  ReadBool(j, "live_ready", path, &o->live_ready);
}

// "daemon", "fds", "notify", "request": the daemon's own parts.
Json DaemonToCbor(const HandoverRecord& r) {
  const DaemonSnapshot& d = r.daemon;
  Json j = {{"daemon",
             {{"self_path", d.self_path},
              {"supervisor_id", d.supervisor_id},
              {"reexecs", d.reexecs},
              {"first_started_mono_ms", d.first_started_mono_ms},
              {"child_nofile", {d.child_nofile_soft, d.child_nofile_hard}}}},
            {"fds",
             {{"lock", r.fds.lock}, {"listener", r.fds.listener}, {"self_exe", r.fds.self_exe}}}};
  if (r.notify)
    j["notify"] = {{"fd", r.notify->fd},
                   {"path", r.notify->path},
                   {"refuses_fds", r.notify->refuses_fds}};
  if (const auto& q = r.request)
    j["request"] = {{"conn_fd", q->conn_fd}, {"rpc_id", q->rpc_id},
                    {"peer", {{"pid", q->pid}, {"uid", q->uid}, {"gid", q->gid}}},
                    {"kill_one_offs", q->kill_one_offs}};
  return j;
}

void DaemonFromCbor(const Json& j, HandoverRecord* r) {
  if (const Json* d = ReadObject(j, "daemon", "")) {
    DaemonSnapshot& s = r->daemon;
    ReadString(*d, "self_path", "daemon", &s.self_path);
    ReadString(*d, "supervisor_id", "daemon", &s.supervisor_id);
    ReadInt(*d, "reexecs", "daemon", &s.reexecs);
    ReadInt(*d, "first_started_mono_ms", "daemon", &s.first_started_mono_ms);
    if (const Json* n = Get(*d, "child_nofile")) {
      if (!n->is_array() || n->size() != 2 || !(*n)[0].is_number_unsigned() ||
          !(*n)[1].is_number_unsigned())
        Fail("daemon.child_nofile", "not [soft, hard]");
      s.child_nofile_soft = (*n)[0].get<uint64_t>();
      s.child_nofile_hard = (*n)[1].get<uint64_t>();
    }
  }
  if (const Json* f = ReadObject(j, "fds", "")) {
    ReadInt(*f, "lock", "fds", &r->fds.lock);
    ReadInt(*f, "listener", "fds", &r->fds.listener);
    ReadInt(*f, "self_exe", "fds", &r->fds.self_exe);
  }
  if (const Json* n = ReadObject(j, "notify", "")) {
    NotifySnapshot& s = r->notify.emplace();
    ReadInt(*n, "fd", "notify", &s.fd);
    ReadString(*n, "path", "notify", &s.path);
    ReadBool(*n, "refuses_fds", "notify", &s.refuses_fds);
  }
  if (const Json* q = ReadObject(j, "request", "")) {
    RequestSnapshot& s = r->request.emplace();
    ReadInt(*q, "conn_fd", "request", &s.conn_fd);
    ReadString(*q, "rpc_id", "request", &s.rpc_id);
    if (const Json* p = ReadObject(*q, "peer", "request")) {
      ReadInt(*p, "pid", "request.peer", &s.pid);
      ReadInt(*p, "uid", "request.peer", &s.uid);
      ReadInt(*p, "gid", "request.peer", &s.gid);
    }
    ReadBool(*q, "kill_one_offs", "request", &s.kill_one_offs);
  }
}

Json RecordToCbor(const HandoverRecord& r) {
  Json j = DaemonToCbor(r);
  j["writer"] = r.writer;
  j["written_mono_ms"] = r.written_mono_ms;
  j["actor"] = {{"uid", r.actor.uid}, {"name", r.actor.name}};
  j["config"] = ToCbor(r.config);
  Json sockets = Json::array();
  for (const AppSocketSnapshot& s : r.app_sockets)
    sockets.push_back({{"app", s.app}, {"name", s.name}, {"address", s.address}, {"fd", s.fd}});
  j["app_sockets"] = sockets;
  j["supervisor"] = handover_cbor::ToCbor(r.supervisor);
  Json outcomes = Json::object();
  for (const auto& [app, o] : r.switch_outcomes) outcomes[app] = ToCbor(o);
  j["switch_outcomes"] = outcomes;
  j["next_switch_id"] = r.next_switch_id;
  j["one_offs_next_id"] = r.one_offs_next_id;
  j["log_seq"] = r.log_seq;
  return j;
}

void RecordFromCbor(const Json& j, HandoverRecord* r) {
  CheckObject(j, "record");
  DaemonFromCbor(j, r);
  ReadString(j, "writer", "", &r->writer);
  ReadInt(j, "written_mono_ms", "", &r->written_mono_ms);
  if (const Json* a = ReadObject(j, "actor", "")) {
    ReadInt(*a, "uid", "actor", &r->actor.uid);
    ReadString(*a, "name", "actor", &r->actor.name);
  }
  if (const Json* c = ReadObject(j, "config", "")) FromCbor(*c, "config", &r->config);
  ReadArray(j, "app_sockets", "", [&](const Json& v, const std::string& p) {
    CheckObject(v, p);
    AppSocketSnapshot& s = r->app_sockets.emplace_back();
    ReadString(v, "app", p, &s.app);
    ReadString(v, "name", p, &s.name);
    ReadString(v, "address", p, &s.address);
    ReadInt(v, "fd", p, &s.fd);
  });
  if (const Json* s = ReadObject(j, "supervisor", "")) handover_cbor::FromCbor(*s, "supervisor", &r->supervisor);
  ReadMap(j, "switch_outcomes", "", [&](const std::string& k, const Json& v, const std::string& p) {
    FromCbor(v, p, &r->switch_outcomes[k]);
  });
  ReadInt(j, "next_switch_id", "", &r->next_switch_id);
  ReadInt(j, "one_offs_next_id", "", &r->one_offs_next_id);
  ReadMap(j, "log_seq", "", [&](const std::string& k, const Json& v, const std::string& p) {
    if (!v.is_number_unsigned()) Fail(p, "not an unsigned integer");
    r->log_seq[k] = v.get<uint64_t>();
  });
}

std::string SizeText(size_t bytes, size_t max) {
  return std::to_string(bytes) + " bytes, over the " +
         (max % (1 << 20) == 0 ? std::to_string(max >> 20) + " MiB"
                               : std::to_string(max) + "-byte") +
         " cap";
}

}  // namespace

Result<std::string> EncodeHandover(const HandoverRecord& record, size_t max_bytes) {
  std::vector<uint8_t> bytes;
  try {
    bytes = Json::to_cbor(RecordToCbor(record));
  } catch (const std::exception& e) {
    return Internal(std::string("cannot encode the handover record: ") + e.what());
  }
  if (bytes.size() > max_bytes)
    return FailedPrecondition("the handover record would be " + SizeText(bytes.size(), max_bytes));
  return std::string(bytes.begin(), bytes.end());
}

Result<HandoverRecord> DecodeHandover(std::string_view payload, int format_version) {
  if (payload.size() > kMaxHandoverBytes)
    return Corruption("the handover record is " + SizeText(payload.size(), kMaxHandoverBytes));
  DepthCheck depth;
  bool parsed = Json::sax_parse(payload.begin(), payload.end(), &depth,
                                Json::input_format_t::cbor, /*strict=*/true);
  if (depth.too_deep)
    return Corruption("the handover record nests deeper than " +
                      std::to_string(kMaxHandoverDepth) + " levels");
  if (!parsed) return Corruption("the handover record is not well-formed CBOR");
  HandoverRecord record;
  try {
    RecordFromCbor(Json::from_cbor(payload.begin(), payload.end()), &record);
  } catch (const std::exception& e) {
    return Corruption(std::string("cannot read the handover record: ") + e.what());
  }
  record.format_version = format_version;
  RETURN_IF_ERROR(UpgradeHandover(&record));
  return record;
}

}  // namespace relsupd
