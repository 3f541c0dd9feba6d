#include "daemon/supervise/output_capture.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "daemon/logs/log_store.h"

namespace relsupd {

OutputCapture::OutputCapture(uv_loop_t* loop, const uint64_t* loop_turn,
                             const Clock* clock, LogStore* logs,
                             const LogRatePolicy& rate, LogSource source)
    : loop_(loop),
      clock_(clock),
      logs_(logs),
      rate_(rate),
      source_(std::move(source)),
      out_(rate.max_line),
      err_(rate.max_line),
      tokens_(static_cast<double>(rate.burst)),
      loop_turn_(loop_turn) {}

void OutputCapture::Attach(ChildProcess* child) { child_ = child; }

void OutputCapture::Detach() {
  child_ = nullptr;
  if (throttle_timer_ != nullptr) uv_timer_stop(throttle_timer_->get());
}

LineSplitter& OutputCapture::SplitterOf(OutputStream stream) {
  return stream == OutputStream::kOut ? out_ : err_;
}

namespace {

std::string_view StreamName(OutputStream stream) {
  return stream == OutputStream::kOut ? "out" : "err";
}

}  // namespace

pid_t OutputCapture::pid() const { return child_ != nullptr ? child_->pid() : 0; }

int64_t OutputCapture::Emit(OutputStream stream, std::string_view data, bool flush_rest) {
  // One batch for the lines of this read: one time stamp, the source's
  // fields encoded once.
  std::optional<LogStore::Batch> batch;
  if (logs_ != nullptr) batch.emplace(*logs_, source_, StreamName(stream), pid());
  LineSplitter& splitter = SplitterOf(stream);
  // Lines cut from ASCII (what is held of an unfinished line included)
  // need no check of their own: one pass over the whole read instead.
  const bool ascii = IsAscii(data) && IsAscii(splitter.buffered_bytes());
  int64_t lines = 0;
  auto emit = [&](std::string_view line, bool partial) {
    ++lines;
    if (observer_) observer_(stream, line);
    if (!batch) return;
    if (ascii) {
      batch->PlainLine(line, partial);
    } else {
      batch->Line(line, partial);
    }
  };
  if (!data.empty()) splitter.Feed(data, emit);
  if (flush_rest) splitter.Flush(emit);
  return lines;
}

void OutputCapture::OnOutput(OutputStream stream, std::string_view data) {
  // Half a read's worth waiting already: a writer ahead of the daemon (a
  // pipe counts pages, so a "full" one may hold a little less than 64 KiB).
  if (data.size() >= ChildProcess::kReadBytes / 2 && child_ != nullptr &&
      rate_.bytes_per_sec >= LogRatePolicy::kGrowPipeRate)
    child_->GrowOutputPipe(stream);
  const int64_t lines = Emit(stream, data, /*flush_rest=*/false);
  int64_t now = clock_->MonotonicMs();
  tokens_ = std::min<double>(
      static_cast<double>(rate_.burst),
      tokens_ + static_cast<double>(now - tokens_ms_) *
                    static_cast<double>(rate_.bytes_per_sec) / 1000.0);
  tokens_ms_ = now;
  tokens_ -= static_cast<double>(data.size()) +
             static_cast<double>(lines * rate_.line_cost);
  const uint64_t turn_ms = uv_now(loop_);
  if (*loop_turn_ != turn_ || turn_ms != turn_ms_) {
    turn_ = *loop_turn_;
    turn_ms_ = turn_ms;
    turn_bytes_ = 0;
  }
  turn_bytes_ += data.size();
  if (tokens_ < 0) {
    Throttle();
  } else if (turn_bytes_ >= kMaxBytesPerTurn && child_ != nullptr) {
    child_->SkipTurn(loop_turn_, turn_ms);
  }
}

void OutputCapture::Throttle() {
  if (child_ == nullptr) return;
  FlushLogs();
  auto wait_ms = static_cast<uint64_t>(
      std::ceil(-tokens_ * 1000.0 / static_cast<double>(rate_.bytes_per_sec)));
  PauseFor(std::max<uint64_t>(wait_ms, 1));
}

void OutputCapture::PauseFor(uint64_t ms) {
  if (child_ == nullptr) return;
  child_->PauseOutput();
  if (throttle_timer_ == nullptr) {
    throttle_timer_ = std::make_unique<UvHandle<uv_timer_t>>();
    uv_timer_init(loop_, throttle_timer_->get());
    (*throttle_timer_)->data = this;
  }
  uv_timer_start(
      throttle_timer_->get(),
      [](uv_timer_t* t) {
        auto* self = static_cast<OutputCapture*>(t->data);
        if (self == nullptr) return;
        if (self->child_ != nullptr) self->child_->ResumeOutput();
      },
      ms, 0);
}

void OutputCapture::OnEof(OutputStream stream) {
  Emit(stream, {}, /*flush_rest=*/true);
}

void OutputCapture::FlushLines() {
  OnEof(OutputStream::kOut);
  OnEof(OutputStream::kErr);
}

void OutputCapture::WriteLine(OutputStream stream, std::string_view line) {
  if (observer_) observer_(stream, line);
  if (logs_ != nullptr)
    LogStore::Batch(*logs_, source_, StreamName(stream), pid()).Line(line);
}

CaptureSnapshot OutputCapture::Export() const {
  return {std::string(out_.buffered_bytes()),
          std::string(err_.buffered_bytes()), tokens_, tokens_ms_};
}

bool OutputCapture::Restore(const CaptureSnapshot& snapshot) {
  const bool out_ok = out_.Restore(snapshot.out_partial);
  const bool err_ok = err_.Restore(snapshot.err_partial);
  tokens_ = snapshot.tokens;
  tokens_ms_ = snapshot.tokens_ms;
  if (tokens_ < 0) Throttle();
  return out_ok && err_ok;
}

void OutputCapture::FlushLogs() {
  if (logs_ != nullptr) logs_->Flush();
}

}  // namespace relsupd
