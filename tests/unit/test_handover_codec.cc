// daemon/reexec: the handover record through its CBOR codec and its
// memfd. Every field survives a round trip; the golden record of each
// released format still reads; a record that is truncated, corrupt, too big
// or too new gives a clear error, never a crash.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "daemon/reexec/handover_codec.h"
#include "daemon/reexec/memfd.h"

namespace Catch {
// A record as the JSON of its CBOR payload, for failed comparisons.
template <>
struct StringMaker<relsupd::HandoverRecord> {
  static std::string convert(const relsupd::HandoverRecord& r) {
    relsupd::Result<std::string> cbor = relsupd::EncodeHandover(r);
    return cbor.ok() ? nlohmann::json::from_cbor(*cbor).dump(1) : cbor.status().ToString();
  }
};
}  // namespace Catch

namespace relsupd {
namespace {

using Json = nlohmann::json;

// A partial line of bytes no text could hold.
const std::string kOddBytes = std::string("a\0b\xff\r", 5);

ProcessSpec Spec() {
  return ProcessSpec{.name = "web",
                     .command = "./bin/server --port $PORT",
                     .scale = 3,
                     .restart = RestartPolicy::kOnFailure,
                     .stop_signal = 2,
                     .stop_timeout_ms = 7'000,
                     .stop_mode = StopMode::kMain,
                     .sockets = {"http", "admin"},
                     .ready = {.kind = ReadyKind::kHttp, .port = 8081, .target = "http://x/up"},
                     .ready_timeout_ms = 9'000,
                     .env = {{"A", "1"}, {"B", ""}},
                     .health = {.check = {.kind = ReadyKind::kExec, .port = 0, .target = "true"},
                                .interval_ms = 1'500,
                                .timeout_ms = 700,
                                .failures = 5},
                     .watchdog_ms = 3'000,
                     .limits = {.memory_bytes = 64 << 20, .pids = 100, .nofile = 4096,
                                .cpu = 1.5}};
}

InstanceSnapshot Instance() {
  InstanceSnapshot i;
  i.type = "web";
  i.index = 2;
  i.leaving = true;
  i.state = InstanceState::kStoppingFault;
  i.timer_deadline_mono_ms = 123'456;
  i.backoff = {.started_ms = 10, .next_delay_ms = 400, .restarts = 3, .exits = {1, 2, 3}};
  i.backoff_delay_ms = 800;
  i.started_ms = 99;
  i.stop_cause = StopCause::kNotReady;
  i.fault = "no WATCHDOG=1 within 3s";
  i.stop_sent_ms = 120;
  i.killed = true;
  i.cgroup_dir = "shop/web.2@7";
  i.exits = {ExitInfo{.time_ms = 1'700'000'000'000, .status = 3, .signal = 9,
                      .stop = StopCause::kRequested, .stop_signal = 15, .killed = true,
                      .stop_timeout_ms = 10'000, .ready_timeout_ms = 60'000,
                      .fault = "GET http://127.0.0.1:1/h: HTTP 500"}};
  i.status_text = "warming up";
  i.type_failed = true;
  i.child = ChildFds{.pid = 4242, .pidfd = 21, .out_fd = 22, .err_fd = -1, .paused = true};
  i.capture = {.out_partial = kOddBytes, .err_partial = "half a li", .tokens = -12.5,
               .tokens_ms = 777};
  return i;
}

GroupSnapshot Group(int64_t number) {
  GroupSnapshot g;
  g.run.app = "shop";
  g.run.number = number;
  g.run.slot = "/var/lib/relsupd/apps/shop/releases/v" + std::to_string(number);
  g.run.config = {{"DATABASE_URL", "postgres://db"}};
  g.run.processes.source = "Procfile";
  g.run.processes.processes = {{"web", Spec()}};
  g.run.processes.release = {.command = "./migrate", .timeout_ms = 30'000};
  g.run.uid = 70001;
  g.run.gid = 70002;
  g.run.groups = {70002, 27};
  g.run.user = "shop";
  g.run.home = "/home/shop";
  g.run.socket_fds = {{"http", 9}};
  g.formation = {{"web", 3}, {"worker", 0}};
  g.stopping = true;
  g.failed_types = {"worker"};
  g.instances = {Instance()};
  return g;
}

// A record where every field of every struct differs from its default.
HandoverRecord Filled() {
  HandoverRecord r;
  r.writer = "0.9.0";
  r.written_mono_ms = 5'000;
  r.actor = {.uid = 1000, .name = "alice"};
  r.daemon = {.self_path = "/usr/libexec/relsupd/relsupd-core", .supervisor_id = "2049:131",
              .reexecs = 4, .first_started_mono_ms = 17, .child_nofile_soft = 1024,
              .child_nofile_hard = 524288};
  r.config = {.state_dir = "/srv/relsupd", .socket = "/run/r.sock", .socket_mode = 0600,
              .socket_group = "g", .admin_group = "ag", .log_level = "debug",
              .max_request_bytes = 1, .max_artifact_bytes = 2, .max_unpacked_bytes = 3,
              .max_entries = 4, .max_compression_ratio = 5, .cgroup = "/sys/fs/cgroup/x",
              .restart_initial_delay_ms = 6, .restart_max_delay_ms = 7,
              .restart_reset_after_ms = 8, .crash_limit = 9, .crash_window_ms = 10,
              .log_max_file_bytes = 11, .log_max_files = 12, .log_rate_limit = 13,
              .app_uid_min = 14, .app_uid_max = 15, .allow_root_apps = true,
              .metrics_listen = "tcp://127.0.0.1:9100"};
  r.fds = {.lock = 3, .listener = 4, .self_exe = 5};
  r.notify = NotifySnapshot{.fd = 6, .path = "/run/relsupd/notify", .refuses_fds = true};
  r.request = RequestSnapshot{.conn_fd = 7, .rpc_id = "\"req-1\"", .pid = 812, .uid = 1000,
                              .gid = 1001, .kill_one_offs = true};
  r.app_sockets = {{.app = "shop", .name = "http", .address = "tcp://0.0.0.0:8080", .fd = 9}};
  r.supervisor.apps = {AppSnapshot{.app = "shop", .active = Group(2), .retiring = {Group(1)}}};
  r.supervisor.reap = {{.pid = 4300, .pidfd = 30}};
  r.supervisor.cgroups = CgroupSnapshot{.root = "/sys/fs/cgroup/relsupd", .next = 77};
  r.switch_outcomes["shop"] = SwitchOutcome{.id = 5, .ok = true, .live = 2, .message = "m",
                                            .note = "n", .live_ready = false,
                                            .changed = false};
  r.next_switch_id = 6;
  r.one_offs_next_id = 8;
  r.log_seq = {{"shop", 123'456'789'012}};
  return r;
}

// Filled() without the fields added since the golden record of version 1
// was written (additive keys: their absence reads as the default).
HandoverRecord FilledAsGolden() {
  HandoverRecord r = Filled();
  r.config.metrics_listen.clear();
  for (auto& [app, o] : r.switch_outcomes) o.changed = true;  // missing: the default
  auto strip = [](GroupSnapshot& g) {
    for (auto& [type, spec] : g.run.processes.processes) {
      spec.health = {};
      spec.watchdog_ms = 0;
      spec.limits = {};
    }
    for (InstanceSnapshot& i : g.instances) {
      i.fault.clear();
      for (ExitInfo& e : i.exits) e.fault.clear();
    }
  };
  for (AppSnapshot& a : r.supervisor.apps) {
    if (a.active) strip(*a.active);
    for (GroupSnapshot& g : a.retiring) strip(g);
  }
  return r;
}

// `got` holds every value Filled() put in (FilledAsGolden(): the golden
// record's). On a mismatch Catch prints both records as JSON (StringMaker
// below).
void CheckFilled(const HandoverRecord& got, bool golden = false) {
  HandoverRecord want = golden ? FilledAsGolden() : Filled();
  want.format_version = got.format_version;
  CHECK(got == want);
}

// The framed image of `payload`, as format `version` needing `min_reader`.
std::string Image(const std::string& payload, uint32_t version = kHandoverVersion,
                  uint32_t min_reader = kHandoverMinReader) {
  return FrameHandover(HandoverImage{.format_version = version, .min_reader_version = min_reader,
                                     .core_count = 0, .core_table = "", .payload = payload});
}

std::string FilledImage() { return Image(*EncodeHandover(Filled())); }

// The image of Filled() after `edit` changed its payload as JSON.
std::string Edited(const std::function<void(Json&)>& edit) {
  Json j = Json::from_cbor(*EncodeHandover(Filled()));
  edit(j);
  std::vector<uint8_t> cbor = Json::to_cbor(j);
  return Image(std::string(cbor.begin(), cbor.end()));
}

std::string Error(std::string_view image) {
  Result<HandoverRecord> r = ParseHandover(image);
  REQUIRE_FALSE(r.ok());
  CHECK_FALSE(r.status().message().empty());
  return r.status().message();
}

const std::string kGolden = std::string(RELSUPD_SOURCE_DIR) + "/tests/unit/data/handover_v1.bin";
TEST_CASE("a handover record with every field set survives the codec and the frame") {
  Result<HandoverRecord> got = ParseHandover(FilledImage());
  REQUIRE(got.ok());
  CHECK(got->format_version == kHandoverVersion);
  CheckFilled(*got);
  // An empty record round-trips to the defaults.
  Result<HandoverRecord> empty = ParseHandover(Image(*EncodeHandover(HandoverRecord{})));
  REQUIRE(empty.ok());
  CHECK(empty->config == DaemonConfig{});
  CHECK_FALSE(empty->notify.has_value());
  CHECK_FALSE(empty->request.has_value());
  CHECK(empty->supervisor.apps.empty());
}

TEST_CASE("enums are written as names and partial lines as byte strings") {
  Json j = Json::from_cbor(*EncodeHandover(Filled()));
  const Json& group = j["supervisor"]["apps"][0]["active"];
  const Json& inst = group["instances"][0];
  CHECK(inst["state"] == "stopping-unready");
  CHECK(inst["stop_cause"] == "not-ready");
  CHECK(inst["exits"][0]["stop"] == "requested");
  CHECK(inst["capture"]["out_partial"].is_binary());
  const Json& web = group["run"]["process_file"]["processes"]["web"];
  CHECK(web["restart"] == "on-failure");
  CHECK(web["stop_mode"] == "main");
  CHECK(web["ready"]["kind"] == "http");
}

// Writes the golden record of this format when asked to (once, when the
// format is released: RELSUPD_WRITE_GOLDEN=1), then reads it as every later
// build must.
TEST_CASE("the golden record of handover version 1 still reads") {
  if (std::getenv("RELSUPD_WRITE_GOLDEN") != nullptr && kHandoverVersion == 1) {
    std::ofstream(kGolden, std::ios::binary) << FilledImage();
  }
  std::ifstream in(kGolden, std::ios::binary);
  REQUIRE(in.good());
  std::stringstream bytes;
  bytes << in.rdbuf();
  Result<HandoverRecord> got = ParseHandover(bytes.str());
  INFO(got.status().ToString());
  REQUIRE(got.ok());
  CHECK(got->format_version == 1);
  CheckFilled(*got, /*golden=*/true);
}

// The codec writes what it reads: no field lost or renamed on the way.
// Keys added since are written too; everything else is the same CBOR.
TEST_CASE("the golden record of handover version 1 re-encodes to the same items") {
  std::ostringstream golden;
  golden << std::ifstream(kGolden, std::ios::binary).rdbuf();
  Result<HandoverRecord> got = ParseHandover(golden.str());
  REQUIRE(got.ok());
  Result<HandoverImage> old_image = UnframeHandover(golden.str());
  REQUIRE(old_image.ok());
  const Json before = Json::from_cbor(old_image->payload);
  Json after = Json::from_cbor(*EncodeHandover(*got));
  // Drop the keys added since version 1 was written, then compare.
  after["config"].erase("metrics_listen");
  for (auto& [app, o] : after["switch_outcomes"].items()) o.erase("changed");
  for (Json* app : {&after["supervisor"]["apps"][0]}) {
    std::vector<Json*> groups = {&(*app)["active"]};
    for (Json& g : (*app)["retiring"]) groups.push_back(&g);
    for (Json* g : groups) {
      for (auto& [type, spec] : (*g)["run"]["process_file"]["processes"].items()) {
        spec.erase("health");
        spec.erase("watchdog_ms");
        spec.erase("limits");
      }
      for (Json& i : (*g)["instances"]) {
        i.erase("fault");
        for (Json& e : i["exits"]) e.erase("fault");
      }
    }
  }
  CHECK(after == before);
}

TEST_CASE("a record of a version this binary does not read is refused, naming both") {
  const std::string payload = *EncodeHandover(Filled());
  CHECK(Error(Image(payload, 0, 0)) == "handover version 0 is older than this relsupd reads "
                                       "(versions 1-" + std::to_string(kHandoverVersion) + ")");
  const uint32_t newer = kHandoverVersion + 1;
  CHECK(Error(Image(payload, newer, newer)) ==
        "handover version " + std::to_string(newer) + " needs a reader of version " +
            std::to_string(newer) + " or later; this relsupd reads versions 1-" +
            std::to_string(kHandoverVersion));
  CHECK_THAT(Error(Image(payload, 1, newer)),
             Catch::StartsWith("handover version 1 needs a reader of version "));
  // A newer format whose changes an older reader may ignore reads.
  Result<HandoverRecord> additive = ParseHandover(Image(payload, newer, kHandoverMinReader));
  REQUIRE(additive.ok());
  CheckFilled(*additive);
}

TEST_CASE("unknown keys are ignored and missing keys read as their defaults") {
  Result<HandoverRecord> extra = ParseHandover(Edited([](Json& j) {
    j["future"] = {{"x", 1}};
    j["supervisor"]["apps"][0]["active"]["instances"][0]["new_field"] = "y";
  }));
  REQUIRE(extra.ok());
  CheckFilled(*extra);
  Result<HandoverRecord> missing = ParseHandover(Edited([](Json& j) {
    j.erase("notify");
    j["supervisor"]["apps"][0]["active"]["instances"][0].erase("timer_deadline_mono_ms");
    j["supervisor"]["apps"][0]["active"]["instances"][0].erase("capture");
    j["config"].erase("crash_limit");
  }));
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->notify.has_value());
  const InstanceSnapshot& i = missing->supervisor.apps[0].active->instances[0];
  CHECK_FALSE(i.timer_deadline_mono_ms.has_value());
  CHECK(i.capture.out_partial.empty());
  CHECK(missing->config.crash_limit == DaemonConfig{}.crash_limit);
}

TEST_CASE("a field of the wrong type or an unknown name is refused with its path") {
  CHECK(Error(Edited([](Json& j) {
          j["supervisor"]["apps"][0]["active"]["instances"][0]["state"] = "dancing";
        })) == "cannot read the handover record: supervisor.apps[0].active.instances[0].state: "
               "unknown name 'dancing'");
  CHECK(Error(Edited([](Json& j) { j["fds"]["lock"] = "three"; })) ==
        "cannot read the handover record: fds.lock: not an integer");
  CHECK(Error(Edited([](Json& j) { j["fds"]["lock"] = int64_t{1} << 40; })) ==
        "cannot read the handover record: fds.lock: out of range");
  CHECK(Error(Edited([](Json& j) {
          j["supervisor"]["apps"][0]["active"]["instances"][0]["capture"]["out_partial"] = "text";
        })) == "cannot read the handover record: "
               "supervisor.apps[0].active.instances[0].capture.out_partial: not a byte string");
  CHECK(Error(Edited([](Json& j) { j["supervisor"]["apps"] = Json::object(); })) ==
        "cannot read the handover record: supervisor.apps: not an array");
  CHECK(Error(Edited([](Json& j) { j = Json::array(); })) ==
        "cannot read the handover record: record: not a map");
}

TEST_CASE("a partial line longer than a splitter can hold is refused") {
  auto with_partial = [](size_t n) {
    return Edited([n](Json& j) {
      j["supervisor"]["apps"][0]["active"]["instances"][0]["capture"]["err_partial"] =
          Json::binary(std::vector<uint8_t>(n, 'x'));
    });
  };
  CHECK(ParseHandover(with_partial(kMaxPartialLineBytes)).ok());
  CHECK_THAT(Error(with_partial(kMaxPartialLineBytes + 1)),
             Catch::Contains("capture.err_partial: 16386 bytes, over the 16385"));
}

TEST_CASE("a truncated or altered handover gives an error, never a crash") {
  const std::string image = FilledImage();
  // Every prefix: the header, or the sizes it states, catch each one.
  for (size_t n = 0; n < image.size(); n += (n < 128 ? 1 : 97)) {
    INFO(n);
    CHECK_FALSE(ParseHandover(image.substr(0, n)).ok());
  }
  CHECK(Error(image.substr(0, 10)) == "the handover is 10 bytes, shorter than its header");
  CHECK(Error(image + "x") == "the handover is " + std::to_string(image.size() + 1) +
                                  " bytes; its header says " + std::to_string(image.size()));
  std::string magic = image;
  magic[0] = 'X';
  CHECK(Error(magic) == "the handover does not start with relsupd's magic");
  std::string flipped = image;
  flipped[kHandoverHeaderBytes + 20] ^= 1;
  CHECK(Error(flipped) == "the handover's payload does not match its SHA-256");
  std::string hash = image;
  hash[40] ^= 1;
  CHECK(Error(hash) == "the handover's core table does not match its SHA-256");
  // A payload with a valid frame but bytes that are not CBOR.
  CHECK(Error(Image("\xff\xff\xff")) == "the handover record is not well-formed CBOR");
  CHECK(Error(Image(image.substr(kHandoverHeaderBytes, 50))) ==
        "the handover record is not well-formed CBOR");
}

TEST_CASE("an oversized or hostile handover is refused before it is read") {
  std::string huge = FilledImage();
  // payload_size (offset 24, 8 bytes LE) claims 1 GiB.
  huge.replace(24, 8, std::string("\0\0\0\x40\0\0\0\0", 8));
  CHECK(Error(huge) == "the handover's header claims sizes over the 256 MiB cap");
  std::string deep(1000, '\x81');  // an array holding an array holding ...
  deep += '\x01';
  CHECK(Error(Image(deep)) == "the handover record nests deeper than 32 levels");
  // The encoder refuses a record over the cap (a small cap here: the real
  // one takes about 9,000 instances with full partial lines).
  HandoverRecord big = Filled();
  const size_t size = EncodeHandover(big)->size();
  CHECK(EncodeHandover(big, size).ok());
  Result<std::string> encoded = EncodeHandover(big, size - 1);
  REQUIRE_FALSE(encoded.ok());
  CHECK(encoded.status().code() == StatusCode::kFailedPrecondition);
  CHECK(encoded.status().message() == "the handover record would be " + std::to_string(size) +
                                          " bytes, over the " + std::to_string(size - 1) +
                                          "-byte cap");
}

}  // namespace
}  // namespace relsupd
