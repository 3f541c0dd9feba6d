#include "daemon/supervise/check_attempt.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <string.h>

#include <algorithm>
#include <string_view>

#include "daemon/base/duration.h"
#include "daemon/base/fd.h"
#include "daemon/base/uv_handle.h"
#include "daemon/config/ready_sockets.h"

namespace relsupd {
namespace {

Result<sockaddr_storage> ResolveLiteral(const ProbeTarget& t) {
  sockaddr_storage ss{};
  std::string host = t.host == "localhost" ? "127.0.0.1" : t.host;
  if (uv_ip4_addr(host.c_str(), t.port, reinterpret_cast<sockaddr_in*>(&ss)) == 0) return ss;
  if (uv_ip6_addr(host.c_str(), t.port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) return ss;
  return InvalidArgument("check address '" + t.host + "' is not an IP address or localhost");
}

// What every attempt has: `done`, a deadline timer, and a zero-delay
// finish for results known at once (done never runs inside Start).
class AttemptBase : public CheckAttempt {
 public:
  AttemptBase(uv_loop_t* loop, std::string what, std::function<void(CheckResult)> done)
      : what_(std::move(what)), done_(std::move(done)) {
    uv_timer_init(loop, timer_.get());
    timer_->data = this;
  }

 protected:
  // Arms the deadline; on it, OnTimeout() runs.
  void ArmDeadline(int64_t timeout_ms) {
    if (timeout_ms <= 0) return;
    timeout_ms_ = timeout_ms;
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          auto* self = static_cast<AttemptBase*>(t->data);
          if (self == nullptr) return;
          if (self->pending_) return self->Deliver();
          self->OnTimeout();
        },
        static_cast<uint64_t>(timeout_ms), 0);
  }
  virtual void OnTimeout() = 0;
  // The result; delivered now (from a callback) or, `later`, in the next
  // loop iteration.
  void Finish(bool passed, const std::string& why, bool later = false) {
    if (finished_) return;
    finished_ = true;
    result_ = {passed, passed ? "" : what_ + ": " + why};
    if (!later) return Deliver();
    pending_ = true;
    uv_timer_start(timer_.get(),
                   [](uv_timer_t* t) {
                     if (auto* self = static_cast<AttemptBase*>(t->data)) self->Deliver();
                   },
                   0, 0);
  }
  std::string TimeoutText() const { return "no answer within " + FormatDurationMs(timeout_ms_); }

 private:
  void Deliver() {
    pending_ = false;
    uv_timer_stop(timer_.get());
    auto done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(result_));  // may destroy this attempt
  }

  std::string what_;
  std::function<void(CheckResult)> done_;
  UvHandle<uv_timer_t> timer_;
  int64_t timeout_ms_ = 0;
  bool finished_ = false;
  bool pending_ = false;
  CheckResult result_;
};

class NetAttempt;

// The connection of a NetAttempt. It owns its tcp handle and frees itself
// in the close callback, so an attempt destroyed mid-try only detaches it.
class NetConn {
 public:
  NetConn(uv_loop_t* loop, NetAttempt* owner) : owner_(owner) {
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
    connect_.data = this;
    write_.data = this;
  }
  // Returns a libuv error, or 0 when the connect is under way.
  int Begin(const sockaddr_storage& addr) {
    int rc = uv_tcp_connect(&connect_, &tcp_, reinterpret_cast<const sockaddr*>(&addr),
                            &NetConn::OnConnect);
    if (rc != 0) Detach();
    return rc;
  }
  void Detach() {
    owner_ = nullptr;
    if (closing_) return;
    closing_ = true;
    auto on_close = [](uv_handle_t* h) { delete static_cast<NetConn*>(h->data); };
    // A connected check ends with a reset (SO_LINGER 0), as HAProxy's
    // checks do: no FIN exchange and no TIME_WAIT socket per check, which
    // at 1,000 checks a second would pile up by the ten thousand.
    if (!connected_ || uv_tcp_close_reset(&tcp_, on_close) != 0)
      uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  }

 private:
  void Result(bool passed, const std::string& why);
  static void OnConnect(uv_connect_t* req, int status);
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<NetConn*>(h->data);
    buf->base = self->reply_ + self->reply_len_;
    buf->len = sizeof(self->reply_) - self->reply_len_;
  }
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t*);

  NetAttempt* owner_;
  uv_tcp_t tcp_;
  uv_connect_t connect_;
  uv_write_t write_;
  std::string request_;
  char reply_[256];
  size_t reply_len_ = 0;
  bool closing_ = false;
  bool connected_ = false;
};

class NetAttempt final : public AttemptBase {
 public:
  NetAttempt(uv_loop_t* loop, ReadyKind kind, ProbeTarget target, std::string what,
             std::function<void(CheckResult)> done)
      : AttemptBase(loop, std::move(what), std::move(done)), kind_(kind),
        target_(std::move(target)) {}
  ~NetAttempt() override {
    if (conn_ != nullptr) conn_->Detach();
  }
  void Begin(uv_loop_t* loop, const sockaddr_storage& addr, int64_t timeout_ms) {
    conn_ = new NetConn(loop, this);
    if (int rc = conn_->Begin(addr); rc != 0) {
      conn_ = nullptr;
      return Finish(false, uv_strerror(rc), /*later=*/true);
    }
    ArmDeadline(timeout_ms);
  }
  ReadyKind kind() const { return kind_; }
  const ProbeTarget& target() const { return target_; }
  void ConnResult(bool passed, const std::string& why) {
    conn_ = nullptr;  // it detached itself
    Finish(passed, why);
  }

 private:
  void OnTimeout() override {
    if (conn_ != nullptr) conn_->Detach();
    conn_ = nullptr;
    Finish(false, TimeoutText());
  }
  ReadyKind kind_;
  ProbeTarget target_;
  NetConn* conn_ = nullptr;
};

void NetConn::Result(bool passed, const std::string& why) {
  NetAttempt* owner = owner_;
  Detach();
  if (owner != nullptr) owner->ConnResult(passed, why);
}

void NetConn::OnConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<NetConn*>(req->data);
  if (self->owner_ == nullptr) return;
  if (status != 0) return self->Result(false, uv_strerror(status));
  self->connected_ = true;
  if (self->owner_->kind() != ReadyKind::kHttp) return self->Result(true, "");
  const ProbeTarget& t = self->owner_->target();
  self->request_ = "GET " + t.path + " HTTP/1.0\r\nHost: " + t.host +
                   "\r\nUser-Agent: relsupd-check\r\nConnection: close\r\n\r\n";
  uv_buf_t buf = uv_buf_init(self->request_.data(), static_cast<unsigned>(self->request_.size()));
  auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
  if (uv_write(&self->write_, stream, &buf, 1, [](uv_write_t*, int) {}) != 0 ||
      uv_read_start(stream, &NetConn::OnAlloc, &NetConn::OnRead) != 0)
    self->Result(false, "cannot send the request");
}

void NetConn::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  auto* self = static_cast<NetConn*>(s->data);
  if (self->owner_ == nullptr || n == 0) return;
  if (n > 0) self->reply_len_ += static_cast<size_t>(n);
  std::string_view reply(self->reply_, self->reply_len_);
  size_t eol = reply.find("\r\n");
  if (eol == std::string_view::npos) {
    // Wait for the whole status line, unless the buffer is full or the
    // peer closed.
    if (n > 0 && self->reply_len_ < sizeof(self->reply_)) return;
    return self->Result(false, n < 0 && self->reply_len_ == 0
                                   ? "the connection closed with no answer"
                                   : "no HTTP status line");
  }
  // "HTTP/1.1 204 No Content"
  std::string_view line = reply.substr(0, eol);
  const size_t sp = line.find(' ');
  if (line.substr(0, 5) != "HTTP/" || sp == std::string_view::npos || line.size() < sp + 4)
    return self->Result(false, "no HTTP status line");
  std::string_view code = line.substr(sp + 1, 3);
  if (code.find_first_not_of("0123456789") != std::string_view::npos)
    return self->Result(false, "no HTTP status line");
  self->Result(code[0] == '2', "HTTP " + std::string(code));
}

class ExecAttempt final : public AttemptBase {
 public:
  ExecAttempt(uv_loop_t* loop, std::string what, std::function<void(CheckResult)> done)
      : AttemptBase(loop, std::move(what), std::move(done)), loop_(loop) {}
  void Begin(const SpawnRequest& req, int64_t timeout_ms) {
    ChildProcess::Callbacks cb;
    cb.on_exit = [this](int64_t status, int signal) {
      // Whatever the check left in its process group goes with it (the
      // group id cannot be reused while a member lives).
      if (child_ != nullptr) ::kill(-child_->pid(), SIGKILL);
      // Safe: ChildProcess calls this last, and the result is delivered
      // in the next loop iteration, after the child object is gone.
      if (signal != 0) {
        const char* abbrev = sigabbrev_np(signal);
        Finish(false, std::string("signal ") + (abbrev ? abbrev : std::to_string(signal).c_str()),
               /*later=*/true);
      } else {
        Finish(status == 0, "exit " + std::to_string(status), /*later=*/true);
      }
    };
    auto child = ChildProcess::Spawn(loop_, req, std::move(cb));
    if (!child.ok()) return Finish(false, child.status().message(), /*later=*/true);
    child_ = std::move(*child);
    ArmDeadline(timeout_ms);
  }

 private:
  void OnTimeout() override {
    child_.reset();  // SIGKILLs its group
    Finish(false, TimeoutText());
  }
  uv_loop_t* loop_;
  std::unique_ptr<ChildProcess> child_;
};

std::string TcpWhat(int port) { return "tcp 127.0.0.1:" + std::to_string(port); }

}  // namespace

std::optional<CheckResult> CheckTcpAtOnce(const ReadyCheck& check) {
  if (check.kind != ReadyKind::kTcp) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(check.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return std::nullopt;  // the loop's try reports it
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  int rc = ::connect(fd.get(), sa, sizeof addr);
  // EINPROGRESS: asked again, connect(2) says how it ended (0 or EISCONN:
  // connected; EALREADY: still under way; else why it failed).
  if (rc != 0 && errno == EINPROGRESS) rc = ::connect(fd.get(), sa, sizeof addr);
  if (rc == 0 || errno == EISCONN) {
    // Ends with a reset, as the loop's try does (NetConn::Detach).
    linger lg{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    return CheckResult{true, ""};
  }
  if (errno == EALREADY || errno == EINTR || errno == EMFILE || errno == ENFILE ||
      errno == ENOBUFS || errno == EAGAIN)
    return std::nullopt;
  return CheckResult{false, TcpWhat(check.port) + ": " + uv_strerror(uv_translate_sys_error(errno))};
}

Result<std::unique_ptr<CheckAttempt>> CheckAttempt::Start(
    uv_loop_t* loop, const ReadyCheck& check, const SpawnRequest& exec_template,
    int64_t timeout_ms, std::function<void(CheckResult)> done) {
  switch (check.kind) {
    case ReadyKind::kTcp:
    case ReadyKind::kHttp: {
      ProbeTarget t;
      std::string what;
      if (check.kind == ReadyKind::kTcp) {
        t.port = check.port;
        what = TcpWhat(check.port);
      } else {
        ASSIGN_OR_RETURN(t, ParseHttpUrl(check.target));
        what = "GET " + check.target;
      }
      ASSIGN_OR_RETURN(sockaddr_storage addr, ResolveLiteral(t));
      auto a = std::make_unique<NetAttempt>(loop, check.kind, t, std::move(what), std::move(done));
      a->Begin(loop, addr, timeout_ms);
      return std::unique_ptr<CheckAttempt>(std::move(a));
    }
    case ReadyKind::kExec: {
      SpawnRequest req = exec_template;
      req.argv = {"/bin/sh", "-c", check.target};
      req.pass_fds.clear();
      req.capture_output = false;
      auto a = std::make_unique<ExecAttempt>(loop, "exec '" + check.target + "'", std::move(done));
      a->Begin(req, timeout_ms);
      return std::unique_ptr<CheckAttempt>(std::move(a));
    }
    case ReadyKind::kNone:
    case ReadyKind::kNotify:
      break;
  }
  return InvalidArgument("this check needs no probe");
}

}  // namespace relsupd
