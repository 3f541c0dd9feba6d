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

}  // namespace

// Each struct's fields, once: Encode() and Decode() (handover_cbor.h) run
// over them. Not in an unnamed namespace: the generic code finds them by
// argument-dependent lookup.
namespace handover_cbor {

template <Is<DaemonConfig> S, typename V>
void Fields(S& c, V&& v) {
  v("state_dir", c.state_dir);
  v("socket", c.socket);
  v("socket_mode", c.socket_mode);
  v("socket_group", c.socket_group);
  v("admin_group", c.admin_group);
  v("log_level", c.log_level);
  v("max_request_bytes", c.max_request_bytes);
  v("max_artifact_bytes", c.max_artifact_bytes);
  v("max_unpacked_bytes", c.max_unpacked_bytes);
  v("max_entries", c.max_entries);
  v("max_compression_ratio", c.max_compression_ratio);
  v("cgroup", c.cgroup);
  v("restart_initial_delay_ms", c.restart_initial_delay_ms);
  v("restart_max_delay_ms", c.restart_max_delay_ms);
  v("restart_reset_after_ms", c.restart_reset_after_ms);
  v("crash_limit", c.crash_limit);
  v("crash_window_ms", c.crash_window_ms);
  v("log_max_file_bytes", c.log_max_file_bytes);
  v("log_max_files", c.log_max_files);
  v("log_rate_limit", c.log_rate_limit);
  v("app_uid_min", c.app_uid_min);
  v("app_uid_max", c.app_uid_max);
  v("allow_root_apps", c.allow_root_apps);
}

template <Is<SwitchOutcome> S, typename V>
void Fields(S& o, V&& v) {
  v("id", o.id);
  v("ok", o.ok);
  v("live", o.live);
  v("message", o.message);
  v("note", o.note);
  v("live_ready", o.live_ready);
}

template <Is<Actor> S, typename V>
void Fields(S& a, V&& v) {
  v("uid", a.uid);
  v("name", a.name);
}

template <Is<DaemonSnapshot> S, typename V>
void Fields(S& d, V&& v) {
  v("self_path", d.self_path);
  v("supervisor_id", d.supervisor_id);
  v("reexecs", d.reexecs);
  v("first_started_mono_ms", d.first_started_mono_ms);
  v("child_nofile", Limits(d.child_nofile_soft, d.child_nofile_hard));
}

template <Is<DaemonFds> S, typename V>
void Fields(S& f, V&& v) {
  v("lock", f.lock);
  v("listener", f.listener);
  v("self_exe", f.self_exe);
}

template <Is<NotifySnapshot> S, typename V>
void Fields(S& n, V&& v) {
  v("fd", n.fd);
  v("path", n.path);
  v("refuses_fds", n.refuses_fds);
}

template <Is<RequestSnapshot> S, typename V>
void Fields(S& q, V&& v) {
  v("conn_fd", q.conn_fd);
  v("rpc_id", q.rpc_id);
  v("peer", Nest([&](auto&& peer) {
      peer("pid", q.pid);
      peer("uid", q.uid);
      peer("gid", q.gid);
    }));
  v("kill_one_offs", q.kill_one_offs);
}

template <Is<AppSocketSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  v("app", s.app);
  v("name", s.name);
  v("address", s.address);
  v("fd", s.fd);
}

// format_version is the header's, not the payload's.
template <Is<HandoverRecord> S, typename V>
void Fields(S& r, V&& v) {
  v("writer", r.writer);
  v("written_mono_ms", r.written_mono_ms);
  v("actor", r.actor);
  v("daemon", r.daemon);
  v("config", r.config);
  v("fds", r.fds);
  v("notify", r.notify);
  v("request", r.request);
  v("app_sockets", r.app_sockets);
  v("supervisor", r.supervisor);
  v("switch_outcomes", r.switch_outcomes);
  v("next_switch_id", r.next_switch_id);
  v("one_offs_next_id", r.one_offs_next_id);
  v("log_seq", r.log_seq);
}

}  // namespace handover_cbor

namespace {

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
    bytes = Json::to_cbor(EncodeFields(record));
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
    const Json j = Json::from_cbor(payload.begin(), payload.end());
    CheckObject(j, "record");
    Fields(record, Reader{j, ""});  // the top level's paths start with its keys
  } catch (const std::exception& e) {
    return Corruption(std::string("cannot read the handover record: ") + e.what());
  }
  record.format_version = format_version;
  RETURN_IF_ERROR(UpgradeHandover(&record));
  return record;
}

}  // namespace relsupd
