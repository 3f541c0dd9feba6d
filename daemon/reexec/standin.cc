#include "daemon/reexec/standin.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <deque>
#include <string_view>
#include <memory>
#include <span>
#include <vector>

#include "daemon/base/clock.h"
#include "daemon/base/fd_passing.h"
#include "daemon/protocol/methods.h"
#include "daemon/reexec/handover_fds.h"

namespace relsupd {
namespace {

constexpr size_t kMaxConnections = 32;
constexpr size_t kMaxPeekBytes = 16 * 1024;  // a longer first line goes to the daemon
constexpr size_t kMaxPeekFds = 16;             // room in a peek (a line with files goes back)
constexpr size_t kMaxPerUid = 8;               // more of one uid go to the daemon
constexpr int64_t kAcceptPauseMs = 100;        // out of fds or memory
constexpr int64_t kConnectionDeadlineMs = 2000;

int64_t Now() { return RealClock().MonotonicMs(); }

// Every fd but those in `keep` (and 0-2) closed.
void CloseAllBut(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned first = 3;
  auto close_range = [](unsigned lo, unsigned hi) {
    if (lo > hi) return;
    if (::syscall(SYS_close_range, lo, hi, 0) != 0)
      for (unsigned fd = lo; fd <= hi && fd < 65536; ++fd) ::close(static_cast<int>(fd));
  };
  for (int k : keep) {
    if (k > 0) close_range(first, static_cast<unsigned>(k) - 1);
    first = static_cast<unsigned>(k) + 1;
  }
  close_range(first, ~0U);
}

// Whether `line` is one request the stand-in answers: a `ps`.
bool IsPs(std::string_view line) {
  const rpc::Json j = rpc::Json::parse(line, nullptr, false);
  if (!j.is_object()) return false;
  auto m = j.find("method");
  return m != j.end() && m->is_string() && m->get_ref<const std::string&>() == rpc::method::kPs;
}

struct Connection {
  Fd fd;
  Peer peer;
  std::string out;
  int64_t deadline_ms = 0;
};

class Server {
 public:
  Server(int listen_fd, int stop_fd, int handback_fd, size_t peek_bytes, Dispatcher* dispatcher,
         const AccessPolicy& policy)
      : listen_fd_(listen_fd), stop_fd_(stop_fd), handback_fd_(handback_fd),
        peek_bytes_(peek_bytes), dispatcher_(dispatcher), policy_(policy) {}

  [[noreturn]] void Run() {
    const int64_t end = Now() + kStandinLifetimeMs;
    for (;;) {
      const int64_t now = Now();
      if (now >= end) ::_exit(0);  // what is left gets EOF; clients ask again
      if (stopping_) {
        // What waits for its next line goes back; then the stand-in ends.
        for (auto& c : conns_)
          if (c->out.empty()) HandBack(*c);
        Sweep();
        if (conns_.empty() && back_.empty()) ::_exit(0);
      }
      // Polled fds: -1 is skipped (a closed stop pipe would report POLLHUP
      // however its events are set).
      const bool accepting = !stopping_ && back_.empty() && conns_.size() < kMaxConnections &&
                             now >= accept_paused_until_;
      std::vector<pollfd> fds = {
          {stopping_ ? -1 : stop_fd_, POLLIN, 0},
          {accepting ? listen_fd_ : -1, POLLIN, 0},
          {back_.empty() ? -1 : handback_fd_, POLLOUT, 0}};
      int64_t wake = accepting || now >= accept_paused_until_ ? end : accept_paused_until_;
      for (const auto& c : conns_) {
        fds.push_back({c->fd.get(), static_cast<short>(c->out.empty() ? POLLIN : POLLOUT), 0});
        wake = std::min(wake, c->deadline_ms);
      }
      const int rc =
          ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wake - now, 0)));
      if (rc < 0 && errno != EINTR) ::_exit(1);
      if (rc < 0) continue;
      if (fds[0].revents != 0) stopping_ = true;
      if (fds[2].revents != 0) FlushBack();
      for (size_t i = 0; i < conns_.size(); ++i) Serve(*conns_[i], fds[i + 3].revents);
      // A connection that did not take its answer in time is dropped; one
      // that sent no whole line in time goes to the daemon.
      for (auto& c : conns_)
        if (c->fd.valid() && Now() >= c->deadline_ms) {
          if (c->out.empty()) HandBack(*c); else c->fd.Reset();
        }
      Sweep();
      if (accepting && fds[1].revents != 0) Accept();
    }
  }

  // An accepted connection, or one the old image had open: past
  // kMaxConnections, or kMaxPerUid of its uid, it goes back at once.
  void Add(Fd fd) {
    auto c = std::make_unique<Connection>();
    c->fd = std::move(fd);
    c->deadline_ms = Now() + kConnectionDeadlineMs;
    auto peer = PeerOf(c->fd.get());
    if (!peer.ok() || conns_.size() >= kMaxConnections) return HandBack(*c);
    const auto same_uid = std::count_if(conns_.begin(), conns_.end(), [&](const auto& o) {
      return o->peer.uid == peer->uid;
    });
    if (static_cast<size_t>(same_uid) >= kMaxPerUid) return HandBack(*c);
    c->peer = *peer;
    c->peer.right = RightOf(c->peer, policy_);
    conns_.push_back(std::move(c));
  }

 private:
  void Sweep() {
    std::erase_if(conns_, [](const std::unique_ptr<Connection>& c) { return !c->fd.valid(); });
  }

  void Accept() {
    while (conns_.size() < kMaxConnections && back_.empty()) {
      Fd fd(::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
          accept_paused_until_ = Now() + kAcceptPauseMs;
        return;
      }
      Add(std::move(fd));
    }
  }

  // The connection goes to the daemon, unread past what was answered; in
  // order, waiting while the socketpair is full (nothing new is accepted
  // meanwhile).
  void HandBack(Connection& c) {
    back_.push_back(std::move(c.fd));
    FlushBack();
  }

  void FlushBack() {
    while (!back_.empty()) {
      const int fd = back_.front().get();
      Result<size_t> sent = SendFds(handback_fd_, "c", std::span<const int>(&fd, 1),
                                    MSG_NOSIGNAL | MSG_DONTWAIT, "a connection back");
      if (!sent.ok()) {
        if (sent.status().error_number() == EAGAIN) return;  // full: POLLOUT
        // The daemon's end is gone (it died): nothing can take them.
        back_.clear();
        return;
      }
      back_.pop_front();
    }
  }

  void Serve(Connection& c, short revents) {
    if (revents == 0 || !c.fd.valid()) return;
    if (!c.out.empty()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return c.fd.Reset();
      if (n > 0) c.out.erase(0, static_cast<size_t>(n));
      return;
    }
    // Peeked, not read: a line the stand-in does not answer stays in the
    // socket for the daemon, and so do files passed with it (a peek
    // installs copies here, closed at once: the socket keeps its own).
    std::string buf(peek_bytes_, '\0');
    std::vector<Fd> copies;
    Result<ReceivedFds> got = ReceiveFds(c.fd.get(), buf, MSG_PEEK, kMaxPeekFds, &copies);
    if (!got.ok()) {
      if (got.status().error_number() != EAGAIN) c.fd.Reset();
      return;
    }
    // SO_PASSCRED is off: control data is files only.
    const bool passed_files = !copies.empty() || got->truncated;
    copies.clear();
    const size_t n = got->bytes;
    if (passed_files) return HandBack(c);
    if (n == 0) return c.fd.Reset();  // the client is done
    buf.resize(n);
    const size_t eol = buf.find('\n');
    if (eol == std::string::npos || !IsPs(std::string_view(buf).substr(0, eol)))
      return HandBack(c);
    if (::recv(c.fd.get(), buf.data(), eol + 1, 0) != static_cast<ssize_t>(eol + 1))
      return c.fd.Reset();
    c.out = dispatcher_->HandleLine(buf.substr(0, eol), c.peer);
    c.deadline_ms = Now() + kConnectionDeadlineMs;
  }

  int listen_fd_, stop_fd_, handback_fd_;
  size_t peek_bytes_;
  Dispatcher* dispatcher_;
  const AccessPolicy& policy_;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::deque<Fd> back_;  // handed back, not sent yet
  int64_t accept_paused_until_ = 0;
  bool stopping_ = false;
};

// The child's side of StartStandin; never returns.
[[noreturn]] void RunChild(pid_t parent, int listen_fd, const std::vector<int>& connections,
                           int stop_fd, int handback_fd, const AccessPolicy& policy,
                           size_t max_request_bytes,
                           const std::function<void(Dispatcher*)>& register_handlers) {
  // The parent's handlers write into its loop's signal pipe: this process
  // takes every signal's default action (SIGPIPE stays ignored).
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP && sig != SIGPIPE) ::signal(sig, SIG_DFL);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  ::prctl(PR_SET_NAME, "relsupd-standin");
  std::vector<int> keep = connections;
  keep.insert(keep.end(), {listen_fd, stop_fd, handback_fd});
  CloseAllBut(keep);
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
  Dispatcher dispatcher(&policy);
  register_handlers(&dispatcher);
  Server server(listen_fd, stop_fd, handback_fd, std::min(kMaxPeekBytes, max_request_bytes),
                &dispatcher, policy);
  for (int fd : connections) server.Add(Fd(fd));
  server.Run();
}

}  // namespace

Result<Standin> StartStandin(int listen_fd, const std::vector<int>& connections,
                             const AccessPolicy& policy, size_t max_request_bytes,
                             const std::function<void(Dispatcher*)>& register_handlers) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno("cannot make the stand-in's pipe", errno);
  Fd stop_read(p[0]), stop_write(p[1]);
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) != 0)
    return Status::FromErrno("cannot make the stand-in's socketpair", errno);
  Fd handback_ours(sp[0]), handback_child(sp[1]);
  // No signal may run the parent's handlers in the child before it resets
  // them: all are blocked across the fork.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0)
    RunChild(parent, listen_fd, connections, stop_read.get(), handback_child.get(), policy,
             max_request_bytes, register_handlers);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Status::FromErrno("cannot fork the stand-in", fork_errno);
  Standin s;
  s.pid = pid;
  s.stop = std::move(stop_write);
  s.handback = std::move(handback_ours);
  s.pidfd = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!s.pidfd.valid()) {
    const int e = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return Status::FromErrno("cannot open the stand-in's pidfd", e);
  }
  ::fcntl(s.pidfd.get(), F_SETFD, FD_CLOEXEC);
  return s;
}

std::string StandinEnvValue(const Standin& s) {
  return std::to_string(s.pid) + "," + std::to_string(s.pidfd.get()) + "," +
         std::to_string(s.stop.get()) + "," + std::to_string(s.handback.get());
}

std::optional<Standin> ParseStandinEnv(const char* value) {
  if (value == nullptr) return std::nullopt;
  long v[4];
  const char* p = value;
  for (int i = 0; i < 4; ++i) {
    char* end = nullptr;
    errno = 0;
    v[i] = std::strtol(p, &end, 10);
    if (end == p || errno != 0 || v[i] <= 0 || v[i] > INT32_MAX) return std::nullopt;
    if (*end != (i < 3 ? ',' : '\0')) return std::nullopt;
    p = end + 1;
  }
  Standin s;
  s.pid = static_cast<pid_t>(v[0]);
  s.pidfd = Fd(static_cast<int>(v[1]));
  s.stop = Fd(static_cast<int>(v[2]));
  s.handback = Fd(static_cast<int>(v[3]));
  return s;
}

Status CheckStandin(const Standin& s, const std::vector<int>& taken) {
  for (int fd : {s.pidfd.get(), s.stop.get(), s.handback.get()})
    if (std::find(taken.begin(), taken.end(), fd) != taken.end())
      return InvalidArgument("the stand-in's fd " + std::to_string(fd) + " is one of the record's");
  RETURN_IF_ERROR(CheckPidfd(s.pidfd.get(), s.pid));
  struct stat st{};
  if (::fstat(s.stop.get(), &st) != 0 || !S_ISFIFO(st.st_mode))
    return InvalidArgument("the stand-in's stop fd " + std::to_string(s.stop.get()) +
                           " is not a pipe");
  if (::fstat(s.handback.get(), &st) != 0 || !S_ISSOCK(st.st_mode))
    return InvalidArgument("the stand-in's fd " + std::to_string(s.handback.get()) +
                           " is not a socket");
  return Status::Ok();
}

StandinStopper::StandinStopper(uv_loop_t* loop, Standin standin, std::function<void(Fd)> take)
    : standin_(std::move(standin)), take_(std::move(take)) {
  standin_.stop.Reset();
  exited_->data = handback_->data = kill_->data = this;
  uv_timer_init(loop, kill_.get());
  uv_timer_start(kill_.get(), &StandinStopper::OnKill, kStandinStopGraceMs, 0);
  // A pidfd and a socket poll on every kernel with pidfds.
  uv_poll_init(loop, exited_.get(), standin_.pidfd.get());
  uv_poll_start(exited_.get(), UV_READABLE, &StandinStopper::OnExited);
  uv_poll_init(loop, handback_.get(), standin_.handback.get());
  uv_poll_start(handback_.get(), UV_READABLE, &StandinStopper::OnHandback);
}

StandinStopper::~StandinStopper() {
  exited_.Close();
  handback_.Close();
  kill_.Close();
  if (reaped_) return;
  ::syscall(SYS_pidfd_send_signal, standin_.pidfd.get(), SIGKILL, nullptr, 0);
  // uv_poll_init made the pidfd non-blocking: a wait would say EAGAIN.
  const int flags = ::fcntl(standin_.pidfd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(standin_.pidfd.get(), F_SETFL, flags & ~O_NONBLOCK);
  Reap(WEXITED);
}

void StandinStopper::Reap(int options) {
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(standin_.pidfd.get()), &info,
                  options);
  } while (rc != 0 && errno == EINTR);
  // ECHILD: reaped already (cannot happen: it is ours alone).
  reaped_ = (rc == 0 && info.si_pid != 0) || (rc != 0 && errno == ECHILD);
}

void StandinStopper::OnExited(uv_poll_t* poll, int, int) {
  auto* self = static_cast<StandinStopper*>(poll->data);
  if (self == nullptr) return;
  self->Reap(WEXITED | WNOHANG);
  if (!self->reaped_) return;  // not yet
  uv_poll_stop(poll);
  uv_timer_stop(self->kill_.get());
}

void StandinStopper::OnKill(uv_timer_t* timer) {
  auto* self = static_cast<StandinStopper*>(timer->data);
  if (self != nullptr)
    ::syscall(SYS_pidfd_send_signal, self->standin_.pidfd.get(), SIGKILL, nullptr, 0);
}

void StandinStopper::OnHandback(uv_poll_t* poll, int, int) {
  auto* self = static_cast<StandinStopper*>(poll->data);
  if (self == nullptr) return;
  // A few per callback: each take looks up its peer's groups.
  for (int taken = 0; taken < 32; ++taken) {
    char byte;
    std::vector<Fd> fds;
    Result<ReceivedFds> got =
        ReceiveFds(self->standin_.handback.get(), std::span<char>(&byte, 1), MSG_DONTWAIT, 1, &fds);
    if (!got.ok() && got.status().error_number() == EAGAIN) return;
    if (!got.ok() || got->bytes == 0) {  // the stand-in's end is closed: all came
      self->drained_ = true;
      uv_poll_stop(poll);
      return;
    }
    for (Fd& fd : fds) self->take_(std::move(fd));
  }
}

}  // namespace relsupd
