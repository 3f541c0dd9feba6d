#include "daemon/supervise/readiness.h"

#include <arpa/inet.h>

#include <cstring>

#include "daemon/base/uv_handle.h"

namespace relsupd {
namespace {

Result<sockaddr_storage> ResolveLiteral(const ProbeTarget& t) {
  sockaddr_storage ss{};
  std::string host = t.host == "localhost" ? "127.0.0.1" : t.host;
  if (uv_ip4_addr(host.c_str(), t.port,
                  reinterpret_cast<sockaddr_in*>(&ss)) == 0)
    return ss;
  if (uv_ip6_addr(host.c_str(), t.port,
                  reinterpret_cast<sockaddr_in6*>(&ss)) == 0)
    return ss;
  return InvalidArgument("ready check address '" + t.host +
                         "' is not an IP address or localhost");
}

// One connection attempt. It owns its tcp handle and frees itself in the
// close callback, so a probe destroyed mid-attempt only has to detach it.
class Attempt;

// How an attempt ended.
enum class AttemptResult { kFailed, kPassed };

class NetProbe final : public ReadyProbe {
 public:
  // `kind`: ReadyKind::kTcp or ReadyKind::kHttp.
  NetProbe(uv_loop_t* loop, sockaddr_storage addr, ReadyKind kind,
           ProbeTarget t, std::function<void()> on_ready)
      : loop_(loop), addr_(addr), kind_(kind), target_(std::move(t)),
        on_ready_(std::move(on_ready)) {
    uv_timer_init(loop_, timer_.get());
    timer_->data = this;
  }
  ~NetProbe() override;
  void Try();
  void Done(AttemptResult result);

 private:
  friend class Attempt;
  uv_loop_t* loop_;
  sockaddr_storage addr_;
  ReadyKind kind_;
  ProbeTarget target_;
  std::function<void()> on_ready_;
  UvHandle<uv_timer_t> timer_;
  Attempt* attempt_ = nullptr;
};

class Attempt {
 public:
  explicit Attempt(NetProbe* probe) : probe_(probe) {
    uv_tcp_init(probe->loop_, &tcp_);
    tcp_.data = this;
    connect_.data = this;
    write_.data = this;
  }
  void Begin() {
    int rc = uv_tcp_connect(&connect_, &tcp_,
                            reinterpret_cast<const sockaddr*>(&probe_->addr_),
                            &Attempt::OnConnect);
    if (rc != 0) Finish(AttemptResult::kFailed);
  }
  void Detach() {
    probe_ = nullptr;
    Close();
  }

 private:
  void Close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
      delete static_cast<Attempt*>(h->data);
    });
  }
  void Finish(AttemptResult result) {
    NetProbe* p = probe_;
    probe_ = nullptr;
    Close();
    if (p != nullptr) p->Done(result);
  }
  static void OnConnect(uv_connect_t* req, int status) {
    auto* self = static_cast<Attempt*>(req->data);
    if (self->probe_ == nullptr) return;
    if (status != 0) return self->Finish(AttemptResult::kFailed);
    if (self->probe_->kind_ != ReadyKind::kHttp)
      return self->Finish(AttemptResult::kPassed);
    const ProbeTarget& t = self->probe_->target_;
    self->request_ = "GET " + t.path + " HTTP/1.0\r\nHost: " + t.host +
                     "\r\nUser-Agent: relsupd-ready\r\nConnection: close\r\n\r\n";
    uv_buf_t buf = uv_buf_init(self->request_.data(),
                               static_cast<unsigned>(self->request_.size()));
    auto* stream = reinterpret_cast<uv_stream_t*>(&self->tcp_);
    if (uv_write(&self->write_, stream, &buf, 1, [](uv_write_t*, int) {}) !=
            0 ||
        uv_read_start(stream, &Attempt::OnAlloc, &Attempt::OnRead) != 0)
      self->Finish(AttemptResult::kFailed);
  }
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Attempt*>(h->data);
    buf->base = self->reply_ + self->reply_len_;
    buf->len = sizeof(self->reply_) - self->reply_len_;
  }
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* self = static_cast<Attempt*>(s->data);
    if (self->probe_ == nullptr) return;
    if (n == 0) return;
    if (n > 0) self->reply_len_ += static_cast<size_t>(n);
    std::string_view reply(self->reply_, self->reply_len_);
    size_t eol = reply.find("\r\n");
    if (eol == std::string_view::npos) {
      // Wait for the whole status line, unless the buffer is full or the
      // peer closed.
      if (n > 0 && self->reply_len_ < sizeof(self->reply_)) return;
      return self->Finish(AttemptResult::kFailed);
    }
    // "HTTP/1.1 204 No Content"
    std::string_view line = reply.substr(0, eol);
    bool ok = line.size() >= 12 && line.substr(0, 5) == "HTTP/" &&
              line[line.find(' ') + 1] == '2';
    self->Finish(ok ? AttemptResult::kPassed : AttemptResult::kFailed);
  }

  NetProbe* probe_;
  uv_tcp_t tcp_;
  uv_connect_t connect_;
  uv_write_t write_;
  std::string request_;
  char reply_[256];
  size_t reply_len_ = 0;
  bool closing_ = false;
};

NetProbe::~NetProbe() {
  if (attempt_ != nullptr) attempt_->Detach();
}

void NetProbe::Try() {
  attempt_ = new Attempt(this);
  attempt_->Begin();
}

void NetProbe::Done(AttemptResult result) {
  attempt_ = nullptr;
  if (result == AttemptResult::kPassed) {
    auto cb = on_ready_;
    cb();  // may destroy this probe
    return;
  }
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = static_cast<NetProbe*>(t->data)) self->Try();
      },
      kRetryMs, 0);
}

class ExecProbe final : public ReadyProbe {
 public:
  ExecProbe(uv_loop_t* loop, SpawnRequest req, std::function<void()> on_ready)
      : loop_(loop), req_(std::move(req)), on_ready_(std::move(on_ready)) {
    uv_timer_init(loop_, timer_.get());
    timer_->data = this;
  }
  void Try() {
    ChildProcess::Callbacks cb;
    cb.on_exit = [this](int64_t status, int signal) {
      child_.reset();
      if (status == 0 && signal == 0) {
        auto ready = on_ready_;
        ready();  // may destroy this probe
        return;
      }
      Retry();
    };
    auto child = ChildProcess::Spawn(loop_, req_, std::move(cb));
    if (!child.ok()) return Retry();
    child_ = std::move(*child);
  }

 private:
  void Retry() {
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
          if (auto* self = static_cast<ExecProbe*>(t->data)) self->Try();
        },
        kRetryMs * 2, 0);
  }
  uv_loop_t* loop_;
  SpawnRequest req_;
  std::function<void()> on_ready_;
  UvHandle<uv_timer_t> timer_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace

Result<std::unique_ptr<ReadyProbe>> ReadyProbe::Start(
    uv_loop_t* loop, const ReadyCheck& check, const SpawnRequest& exec_template,
    std::function<void()> on_ready) {
  switch (check.kind) {
    case ReadyKind::kTcp:
    case ReadyKind::kHttp: {
      ProbeTarget t;
      if (check.kind == ReadyKind::kTcp) {
        t.port = check.port;
      } else {
        ASSIGN_OR_RETURN(t, ParseHttpUrl(check.target));
      }
      ASSIGN_OR_RETURN(sockaddr_storage addr, ResolveLiteral(t));
      auto p = std::make_unique<NetProbe>(loop, addr, check.kind, t,
                                          std::move(on_ready));
      p->Try();
      return std::unique_ptr<ReadyProbe>(std::move(p));
    }
    case ReadyKind::kExec: {
      SpawnRequest req = exec_template;
      req.argv = {"/bin/sh", "-c", check.target};
      req.pass_fds.clear();
      req.capture_output = false;
      auto p = std::make_unique<ExecProbe>(loop, std::move(req),
                                           std::move(on_ready));
      p->Try();
      return std::unique_ptr<ReadyProbe>(std::move(p));
    }
    case ReadyKind::kNone:
    case ReadyKind::kNotify:
      break;
  }
  return InvalidArgument("this ready check needs no probe");
}

}  // namespace relsupd
