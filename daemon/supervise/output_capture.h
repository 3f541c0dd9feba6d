#pragma once
// OutputCapture: one instance's stdout and stderr, cut into lines and
// handed to the log store, at a bounded rate per instance so that a
// flooding child only slows itself.
//
// Owned by its Instance and lives as long as it: the rate budget and the
// line splitters carry over from one process of the instance to the next.
// It reads through the ChildProcess the Instance attaches (and pauses that
// process's pipes when over budget), never owning it. Loop thread only.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/base/clock.h"
#include "daemon/base/uv_handle.h"
#include "daemon/logs/line_splitter.h"
#include "daemon/logs/log_record.h"
#include "daemon/supervise/spawn.h"

namespace relsupd {

class LogStore;

// How output is read: a token bucket per instance. Each line costs its
// bytes plus `line_cost`; an instance over its budget stops being read
// until the bucket refills, and its writes block.
struct LogRatePolicy {
  // An instance allowed at least this many bytes per second that fills a
  // read gets a bigger pipe (ChildProcess::GrowOutputPipe): it then holds
  // at most 1/64 s of its budget; below it, the rate, not the pipe, is
  // what holds the instance back.
  static constexpr int64_t kGrowPipeRate = int64_t{64} << 20;
  int64_t bytes_per_sec = 4 << 20;
  int64_t burst = 4 << 20;
  int64_t line_cost = 128;
  size_t max_line = 16 * 1024;
};

class OutputCapture {
 public:
  // At most this many bytes of one instance's output are taken in one loop
  // turn (libuv reads a stream up to 32 times in one go, 32 MiB from a grown
  // pipe): past it, the process's pipes are skipped for the rest of the
  // turn (ChildProcess::SkipTurn), so a flooding app holds the loop about
  // 2 ms at most, whatever its pipe and its rate.
  static constexpr size_t kMaxBytesPerTurn = 2 << 20;

  // `logs` null: lines are dropped (the rate is still enforced).
  // `loop_turn`: a count the loop's owner moves on once per loop turn
  // (SuperviseEnv::loop_turn; where nobody does, a turn ends when uv_now()
  // moves on).
  // REQUIRES: `loop`, `clock`, `logs` and `loop_turn` outlive this.
  OutputCapture(uv_loop_t* loop, const uint64_t* loop_turn, const Clock* clock,
                LogStore* logs, const LogRatePolicy& rate, LogSource source);
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  // The process whose output arrives now; it is paused when over budget.
  // REQUIRES: `child` stays alive until Detach().
  void Attach(ChildProcess* child);
  // The process is gone (or about to be): no more pausing or resuming.
  void Detach();

  // ChildProcess::Callbacks: a chunk of output, and a stream's end.
  void OnOutput(OutputStream stream, std::string_view data);
  void OnEof(OutputStream stream);
  // Emits what is left of an unfinished line on both streams (the process
  // ended: its last line had no '\n').
  void FlushLines();
  // A whole line of the daemon's own in the instance's log (why a spawn
  // failed, say).
  void WriteLine(OutputStream stream, std::string_view line);
  // Writes the log store's buffered records to its files.
  void FlushLogs();
  // daemon-reexec: the unfinished lines and the rate budget, and back.
  // Restore throttles again when the budget is spent (REQUIRES: the adopted
  // process attached first); false when a partial line could not be taken
  // (it is dropped, the rest restored).
  CaptureSnapshot Export() const;
  bool Restore(const CaptureSnapshot& snapshot);
  // Also hands every line to `observer` (a one-off keeps its last lines).
  void set_line_observer(
      std::function<void(OutputStream, std::string_view)> observer) {
    observer_ = std::move(observer);
  }

 private:
  LineSplitter& SplitterOf(OutputStream stream);
  // Feeds `data` to the stream's splitter (and with flush_rest, what it
  // holds), handing each line to the observer and the log store; returns
  // how many lines it handed on.
  int64_t Emit(OutputStream stream, std::string_view data, bool flush_rest);
  pid_t pid() const;
  void Throttle();
  // Pauses reading and resumes it after `ms`.
  void PauseFor(uint64_t ms);

  uv_loop_t* loop_;
  const Clock* clock_;
  LogStore* logs_;
  LogRatePolicy rate_;
  LogSource source_;
  ChildProcess* child_ = nullptr;
  LineSplitter out_;
  LineSplitter err_;
  double tokens_;
  int64_t tokens_ms_ = 0;
  const uint64_t* loop_turn_;
  uint64_t turn_ = UINT64_MAX;  // the loop turn turn_bytes_ counts,
  uint64_t turn_ms_ = 0;        // and uv_now() in it
  size_t turn_bytes_ = 0;
  std::unique_ptr<UvHandle<uv_timer_t>> throttle_timer_;
  std::function<void(OutputStream, std::string_view)> observer_;
};

}  // namespace relsupd
