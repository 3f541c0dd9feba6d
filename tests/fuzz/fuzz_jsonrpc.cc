// Fuzzes the control socket's input path: the byte stream is cut into lines
// by rpc::LineBuffer (in chunks, as reads arrive) and each line goes to the
// Dispatcher with the daemon's real handlers on a temp state dir (ledger,
// release service, run service, log store). Nothing can spawn: a release
// needs an imported build and an import needs an fd, which fuzz input cannot
// send.
//
// Input: byte 0 picks the peer (bit 0: an admin or a read-only one), byte 1
// the line limit (0xff: 1 MiB, the daemon's default) and the read size; the
// rest is the stream. Every answer must be one framed JSON-RPC response (or
// batch) and must come within 5 s.

#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "daemon/base/clock.h"
#include "daemon/base/fd.h"
#include "daemon/control/dispatcher.h"
#include "daemon/control/handlers.h"
#include "daemon/ledger/ledger.h"
#include "daemon/logs/log_store.h"
#include "daemon/protocol/jsonrpc.h"
#include "daemon/run/run_service.h"
#include "daemon/store/release_service.h"

namespace relsupd {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_jsonrpc: %s\n", what.c_str());
  std::abort();
}

// The daemon's objects, made once per process (never destroyed: libFuzzer
// ends with exit(), and what globals reach is not a leak).
struct World {
  std::string state_dir;
  uv_loop_t loop{};
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<ReleaseService> releases;
  std::unique_ptr<LogStore> logs;
  std::unique_ptr<RunService> runs;
  DaemonContext context;
  AccessPolicy policy;
  std::unique_ptr<Dispatcher> dispatcher;
  Peer admin, reader;

  World() {
    char tmpl[] = "/tmp/relsupd-fuzz-rpc-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp failed");
    state_dir = tmpl;
    uv_loop_init(&loop);
    auto l = Ledger::Open(state_dir + "/ledger.db", RealClock());
    if (!l.ok()) Fail(l.status().message());
    ledger = std::move(*l);
    releases = std::make_unique<ReleaseService>(&loop, ledger.get(), state_dir,
                                                StoreLimits());
    auto ls = LogStore::Open(state_dir + "/logs", LogStoreOptions(), RealClock());
    if (!ls.ok()) Fail(ls.status().message());
    logs = std::move(*ls);
    SuperviseEnv env;
    env.loop = &loop;
    env.clock = &RealClock();
    env.logs = logs.get();
    env.supervisor_id = "fuzz";
    runs = std::make_unique<RunService>(std::move(env), ledger.get(),
                                        releases.get(), state_dir);
    context.ledger = ledger.get();
    context.releases = releases.get();
    context.runs = runs.get();
    context.logs = logs.get();
    context.clock = &RealClock();
    context.state_dir = state_dir;
    context.socket = state_dir + "/control.sock";
    context.started_ms = RealClock().MonotonicMs();
    policy.daemon_uid = geteuid();
    dispatcher = std::make_unique<Dispatcher>(&policy);
    RegisterHandlers(dispatcher.get(), &context);
    RegisterReleaseHandlers(dispatcher.get(), &context);
    RegisterProcessHandlers(dispatcher.get(), &context);
    admin.uid = geteuid();
    admin.name = "admin";
    admin.right = Right::kChange;
    reader.uid = 65534;
    reader.name = "nobody";
    reader.right = Right::kRead;
    std::atexit([] { std::filesystem::remove_all(Get().state_dir); });
  }

  static World& Get() {
    static World* world = new World();
    return *world;
  }
};

void CheckResponse(const rpc::Json& r) {
  if (!r.is_object() || r.value("jsonrpc", "") != "2.0" || !r.contains("id") ||
      r.contains("result") == r.contains("error"))
    Fail("not a JSON-RPC response: " + r.dump());
  if (r.contains("error") && (!r["error"].is_object() || !r["error"]["code"].is_number_integer() ||
                              !r["error"]["message"].is_string()))
    Fail("malformed error object: " + r.dump());
}

void CheckFramed(const std::string& out) {
  if (out.empty()) return;  // a notification, or a batch of them
  if (out.back() != '\n' || out.find('\n') != out.size() - 1)
    Fail("response is not one line");
  rpc::Json j = rpc::Json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) Fail("response is not JSON: " + out);
  if (j.is_array()) {
    if (j.empty()) Fail("empty batch response");
    for (const auto& r : j) CheckResponse(r);
  } else {
    CheckResponse(j);
  }
}

}  // namespace
}  // namespace relsupd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace relsupd;
  if (size < 2) return 0;
  World& w = World::Get();
  const Peer& peer = (data[0] & 1) ? w.reader : w.admin;
  // 0xff: the daemon's default max_request_bytes.
  const size_t limit = data[1] == 0xff ? size_t{1} << 20 : 64 + static_cast<size_t>(data[1]) * 64;
  const size_t chunk = 1 + (data[1] % 37);
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  rpc::LineBuffer input(limit);
  std::deque<Fd> fds;
  int pending = 0;
  for (size_t at = 0; at < stream.size(); at += chunk) {
    input.Append(stream.substr(at, chunk));
    std::string line;
    rpc::LineBuffer::Next next;
    while ((next = input.Pop(&line)) == rpc::LineBuffer::Next::kLine) {
      if (line.size() > limit) Fail("a line over the limit was popped");
      ++pending;
      w.dispatcher->HandleLine(line, peer, &fds, [&pending](std::string out) {
        CheckFramed(out);
        --pending;
      });
    }
    if (next == rpc::LineBuffer::Next::kTooLong) {
      if (input.buffered() <= limit) Fail("kTooLong below the limit");
      break;  // the server answers and stops reading
    }
  }
  // Async handlers answer from the loop (thread-pool work, timers).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (pending > 0) {
    uv_run(&w.loop, UV_RUN_NOWAIT);
    if (pending == 0) break;
    if (std::chrono::steady_clock::now() > deadline)
      Fail(std::to_string(pending) + " request(s) got no answer within 5 s");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (pending < 0) Fail("a request was answered twice");
  return 0;
}
