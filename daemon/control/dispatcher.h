#pragma once
// Dispatcher: JSON-RPC 2.0 semantics over a table of methods.
//
// Takes one received line and sends back the line that answers it (none for
// notifications, or a batch of them). Handles parse errors, invalid
// requests, batches, unknown methods and the rights check; handlers see only
// valid params objects. A handler answers at once (Handler) or later, e.g.
// after work on the thread pool (AsyncHandler). Knows nothing of sockets, so
// unit tests drive it directly. Loop thread only.
//
// No line may hold the loop: a received line is queued in its peer's lane
// (uid and pid) and run later, one step at a time (parse, or one request of
// a batch), round-robin across lanes, in slices of about kSliceBudgetUs
// from an idle handle (RunOnLoop); a lane that was idle goes before the
// busy ones. So a peer sending heavy batches delays another peer by about
// one step, not by its whole queue. Each handler keeps its
// own step short (pages, off-loop work). Limits: nesting depth
// (rpc::kMaxDepth, checked before parsing), kMaxBatch requests a batch,
// kMaxQueuedLines / kMaxQueuedBytes waiting per lane (past them: kBusy),
// and rpc::kMaxReplyBytes per reply (a batch's replies together; past it a
// request gets kReplyTooLarge).
//
// Without RunOnLoop (unit tests), HandleLine runs the queue to its end
// before it returns.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/control/peer.h"
#include "daemon/protocol/jsonrpc.h"

namespace relsupd {

// One call as a handler sees it. `peer` and `fds` live until the handler
// returns, not until it replies: an async handler copies what it needs.
struct Request {
  const rpc::Json& params;
  const Peer& peer;
  // File descriptors the client sent (SCM_RIGHTS) with this line that no
  // request has taken yet; a handler that expects one pops it.
  std::deque<Fd>* fds;
  // The request's JSON-RPC id (null for a notification), and whether it
  // came in a batch: daemon.reexec answers from the new image, on the
  // same connection, with this id.
  const rpc::Json& id;
  bool in_batch = false;
};

using Reply = std::function<void(Result<rpc::Json>)>;
using Handler = std::function<Result<rpc::Json>(const Request&)>;
using AsyncHandler = std::function<void(const Request&, Reply)>;

// Requests answered since this image started, by (method, outcome):
// outcome "ok", or the error's kind ("invalid-argument", "permission-
// denied", ...). A method no handler has counts as "(unknown)", so that a
// peer cannot grow the map with names of its own.
using RequestCounts = std::map<std::pair<std::string, std::string>, uint64_t>;

class Dispatcher {
 public:
  // Batches longer than this are refused as a whole.
  static constexpr size_t kMaxBatch = 100;
  // Lines waiting in one peer's lane, and their bytes.
  static constexpr size_t kMaxQueuedLines = 64;
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  // A slice runs steps until this much time went by (at least one step).
  static constexpr int64_t kSliceBudgetUs = 2000;

  explicit Dispatcher(const AccessPolicy* policy) : policy_(policy) {}
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // REQUIRES: `name` not registered yet.
  void Register(std::string name, Right needed, Handler handler);
  const RequestCounts& request_counts() const { return *counts_; }
  void RegisterAsync(std::string name, Right needed, AsyncHandler handler);

  // From now on queued lines run in slices from an idle handle on `loop`.
  // REQUIRES: `loop` outlives the dispatcher, or Stop() is called first.
  // `closer`, when given, gets the fds a line brought that no handler took
  // (a close() of a peer's file can block: see fd_closer.h); without one
  // they are closed in place (unit tests).
  // REQUIRES: `closer` outlives the dispatcher.
  void RunOnLoop(uv_loop_t* loop, FdCloser* closer = nullptr);
  // Closes the idle handle; queued lines are dropped unanswered.
  void Stop();
  // While paused no queued line starts (daemon-reexec's drain: only work
  // already started completes); lines still queue, within the limits.
  void Pause();
  void Resume();
  // Drops every queued line unanswered, its passed fds to the closer
  // (daemon-reexec, before the exec would close them in execve).
  void DropQueued();

  // Queues one line; calls `respond` exactly once, usually after
  // HandleLine returned, with the framed response ("...\n") or with ""
  // when none is due (notifications). The fds in `*fds` when it is called
  // belong to this line: they are moved out, and those no handler took are
  // closed once the line's requests are dispatched.
  void HandleLine(const std::string& line, const Peer& peer,
                  std::deque<Fd>* fds,
                  std::function<void(std::string)> respond);
  // The synchronous form for tests: returns the framed response or "".
  // REQUIRES: not RunOnLoop; every method the line calls answers at once.
  std::string HandleLine(const std::string& line, const Peer& peer);

  // Runs queued steps for about kSliceBudgetUs. Loop thread.
  void RunSlice();
  bool HasWork() const { return !fresh_.empty() || !ready_.empty(); }

 private:
  // A batch's answers arrive in any order; they are kept serialised, and the
  // batch response goes out with the last one.
  struct Batch {
    std::vector<std::string> responses;  // "" for a notification
    size_t pending = 0;
    size_t bytes = 0;
    std::function<void(std::string)> respond;
  };

  struct Line {
    std::string text;
    size_t bytes = 0;  // counted in its lane's bytes until it is done
    Peer peer;
    std::deque<Fd> fds;
    std::function<void(std::string)> respond;
    std::optional<rpc::Json> parsed;  // set by the first step
    size_t next = 0;             // the batch's next request
    std::shared_ptr<Batch> batch;
  };

  using LaneKey = std::pair<uid_t, pid_t>;
  struct Lane {
    std::deque<std::unique_ptr<Line>> lines;
    size_t bytes = 0;
    // Requests refused while it was full: the first is logged, the count
    // when it drains (a peer that keeps pushing cannot flood the log).
    uint64_t refused = 0;
  };

  // One step of `line`; true when the line is done (every request
  // dispatched).
  bool Step(Line& line);
  // Calls `done` with the response object, or null for a notification.
  void HandleOne(const rpc::Json& request, const Peer& peer,
                 std::deque<Fd>* fds, bool in_batch,
                 std::function<void(rpc::Json)> done);
  void StartIdle();
  static void OnIdle(uv_idle_t* idle);

  std::map<std::string, std::pair<Right, AsyncHandler>, std::less<>> methods_;
  // Answers by (method, outcome); shared with replies that may come late.
  std::shared_ptr<RequestCounts> counts_ = std::make_shared<RequestCounts>();
  const AccessPolicy* policy_;
  FdCloser* closer_ = nullptr;
  std::map<LaneKey, Lane> lanes_;
  // Lanes with work, in turn order: those that were idle until their
  // newest line came (fresh_) before those busy with earlier lines.
  std::deque<LaneKey> fresh_;
  std::deque<LaneKey> ready_;
  UvHandle<uv_idle_t> idle_;
  bool idle_running_ = false;
  bool paused_ = false;
};

}  // namespace relsupd
