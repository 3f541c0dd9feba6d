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
RELSUPD_CODEC_SIZE(DaemonConfig, 352);
RELSUPD_CODEC_SIZE(SwitchOutcome, 96);
RELSUPD_CODEC_SIZE(HandoverRecord, 904);
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

RELSUPD_CODEC_FIELDS(DaemonConfig, state_dir, socket, socket_mode, socket_group, admin_group,
                     log_level, max_request_bytes, max_artifact_bytes, max_unpacked_bytes,
                     max_entries, max_compression_ratio, cgroup, restart_initial_delay_ms,
                     restart_max_delay_ms, restart_reset_after_ms, crash_limit, crash_window_ms,
                     log_max_file_bytes, log_max_files, log_rate_limit, app_uid_min, app_uid_max,
                     allow_root_apps, metrics_listen)

// `changed` came after version 1 shipped: a record without it reads as
// true (a field missing from a map keeps its default).
RELSUPD_CODEC_FIELDS(SwitchOutcome, id, ok, live, message, note, live_ready, changed)

RELSUPD_CODEC_FIELDS(Actor, uid, name)

template <Is<DaemonSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  RELSUPD_FIELDS(self_path, supervisor_id, reexecs, first_started_mono_ms);
  v("child_nofile", Limits(s.child_nofile_soft, s.child_nofile_hard));
}

RELSUPD_CODEC_FIELDS(DaemonFds, lock, listener, self_exe)

RELSUPD_CODEC_FIELDS(NotifySnapshot, fd, path, refuses_fds)

template <Is<RequestSnapshot> S, typename V>
void Fields(S& s, V&& v) {
  RELSUPD_FIELDS(conn_fd, rpc_id, kill_one_offs);
  v("peer", Nest([&](auto&& peer) {
      peer("pid", s.pid);
      peer("uid", s.uid);
      peer("gid", s.gid);
    }));
}

RELSUPD_CODEC_FIELDS(AppSocketSnapshot, app, name, address, fd)

// format_version is the header's, not the payload's.
RELSUPD_CODEC_FIELDS(HandoverRecord, writer, written_mono_ms, actor, daemon, config, fds, notify,
                     request, app_sockets, supervisor, switch_outcomes, next_switch_id,
                     one_offs_next_id, log_seq)

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
    if (!j.is_object()) throw DecodeError("record: not a map");
    Fields(record, Reader{j, Path{}});  // the top level's paths start with its keys
  } catch (const std::exception& e) {
    return Corruption(std::string("cannot read the handover record: ") + e.what());
  }
  record.format_version = format_version;
  RETURN_IF_ERROR(UpgradeHandover(&record));
  return record;
}

}  // namespace relsupd
