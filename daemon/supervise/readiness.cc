#include "daemon/supervise/readiness.h"

#include "daemon/base/uv_handle.h"
#include "daemon/supervise/check_attempt.h"

namespace relsupd {
namespace {

// Tries the check until a try passes, `retry_ms` after each failed one.
class RetryingProbe final : public ReadyProbe {
 public:
  RetryingProbe(uv_loop_t* loop, ReadyCheck check, SpawnRequest exec_template,
                int64_t retry_ms, std::function<void()> on_ready)
      : loop_(loop), check_(std::move(check)), exec_template_(std::move(exec_template)),
        retry_ms_(retry_ms), on_ready_(std::move(on_ready)) {
    uv_timer_init(loop_, timer_.get());
    timer_->data = this;
  }
  Status Try() {
    ASSIGN_OR_RETURN(attempt_, CheckAttempt::Start(loop_, check_, exec_template_, 0,
                                                   [this](CheckResult r) { Done(r); }));
    return Status::Ok();
  }

 private:
  void Done(const CheckResult& r) {
    attempt_.reset();
    if (r.passed) {
      auto ready = on_ready_;
      ready();  // may destroy this probe
      return;
    }
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          if (auto* self = static_cast<RetryingProbe*>(t->data)) self->Try().IgnoreError();
        },
        static_cast<uint64_t>(retry_ms_), 0);
  }

  uv_loop_t* loop_;
  ReadyCheck check_;
  SpawnRequest exec_template_;
  int64_t retry_ms_;
  std::function<void()> on_ready_;
  UvHandle<uv_timer_t> timer_;
  std::unique_ptr<CheckAttempt> attempt_;
};

}  // namespace

Result<std::unique_ptr<ReadyProbe>> ReadyProbe::Start(
    uv_loop_t* loop, const ReadyCheck& check, const SpawnRequest& exec_template,
    std::function<void()> on_ready) {
  if (check.kind == ReadyKind::kNone || check.kind == ReadyKind::kNotify)
    return InvalidArgument("this ready check needs no probe");
  // An exec check costs a process per try: half as often.
  const int64_t retry = check.kind == ReadyKind::kExec ? kRetryMs * 2 : kRetryMs;
  auto p = std::make_unique<RetryingProbe>(loop, check, exec_template, retry, std::move(on_ready));
  RETURN_IF_ERROR(p->Try());
  return std::unique_ptr<ReadyProbe>(std::move(p));
}

}  // namespace relsupd
