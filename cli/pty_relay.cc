#include "cli/pty_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

namespace relsupd::cli {
namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
// Bytes of stdin held while the process does not read its terminal.
constexpr size_t kMaxPendingInput = 64 * 1024;
// How long the master is read after the reply while no more comes.
constexpr int kDrainQuietMs = 2000;
// A reply line longer than this is not relsupd's.
constexpr size_t kMaxReplyBytes = 1 << 20;

int g_signal_write = -1;
struct sigaction g_saved[std::size(kForwarded)];
struct sigaction g_saved_pipe;

void OnSignal(int signum) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(signum);
  // Non-blocking: a full pipe drops the signal rather than hang here.
  [[maybe_unused]] ssize_t n = ::write(g_signal_write, &b, 1);
  errno = saved;
}

}  // namespace

Status SetNonBlockingFd(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return Status::FromErrno("cannot make fd non-blocking", errno);
  return Status::Ok();
}

namespace {

// Writes all of `data` to a blocking fd; false once the reader is gone.
bool WriteOut(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The state of one relay between poll rounds.
struct RelayState {
  explicit RelayState(const RelayFds& f) : fds(f) {}
  const RelayFds& fds;
  std::string to_master;     // stdin bytes not written yet
  std::string reply;         // the daemon's reply as it arrives
  bool stdin_open = false;   // stdin is ours to read (with a pty)
  bool eof_pending = false;  // stdin ended: send the terminal's EOF
  bool master_open = false;  // a slave is still open
  bool stdout_open = true;
  char last_sent = '\n';
};

// The process's terminal gets end-of-file the way a keyboard gives it:
// the EOF character (twice after a partial line), in canonical mode only.
void SendEof(RelayState& s) {
  s.eof_pending = false;
  termios t{};
  if (::tcgetattr(s.fds.master, &t) != 0 || (t.c_lflag & ICANON) == 0) return;
  std::string eof(s.last_sent == '\n' ? 1 : 2, static_cast<char>(t.c_cc[VEOF]));
  s.to_master += eof;
}

void ReadSignals(RelayState& s) {
  unsigned char buf[64];
  ssize_t n = ::read(s.fds.signals, buf, sizeof buf);
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] == SIGWINCH) {
      if (s.fds.master >= 0) CopyWindowSize(STDIN_FILENO, s.fds.master);
      continue;
    }
    // To the daemon, which signals the process group. Dropped when the
    // pipe is full (the daemon reads it as fast as it can).
    [[maybe_unused]] ssize_t w = ::write(s.fds.control, &buf[i], 1);
  }
}

// Master to stdout; false when the master reports no slave is open.
bool ReadMaster(RelayState& s) {
  char buf[64 * 1024];
  ssize_t n = ::read(s.fds.master, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {  // EIO: every slave is closed
    s.master_open = false;
    return false;
  }
  if (s.stdout_open)
    s.stdout_open = WriteOut(STDOUT_FILENO, buf, static_cast<size_t>(n));
  return true;
}

void ReadStdin(RelayState& s) {
  char buf[16 * 1024];
  ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    s.stdin_open = false;
    s.eof_pending = true;
    return;
  }
  s.to_master.append(buf, static_cast<size_t>(n));
}

void WriteMaster(RelayState& s) {
  ssize_t n = ::write(s.fds.master, s.to_master.data(), s.to_master.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    s.to_master.clear();
    return;
  }
  s.last_sent = s.to_master[static_cast<size_t>(n) - 1];
  s.to_master.erase(0, static_cast<size_t>(n));
}

// Reads from the socket; true once a whole line is in `reply`.
Result<bool> ReadSocket(RelayState& s) {
  char buf[16 * 1024];
  ssize_t n = ::read(s.fds.socket, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return false;
  if (n <= 0)
    return Status(StatusCode::kUnavailable,
                  "lost the connection to relsupd; the process was ended");
  s.reply.append(buf, static_cast<size_t>(n));
  size_t nl = s.reply.find('\n');
  if (nl != std::string::npos) {
    s.reply.resize(nl);
    return true;
  }
  if (s.reply.size() > kMaxReplyBytes)
    return Status(StatusCode::kUnavailable, "reply from relsupd is too large");
  return false;
}

// After the reply: the process's last output, until no slave is open or
// nothing came for kDrainQuietMs (a descendant that left the process's
// cgroup and session may hold the slave).
void Drain(RelayState& s) {
  while (s.master_open) {
    pollfd p{s.fds.master, POLLIN, 0};
    int ready = ::poll(&p, 1, kDrainQuietMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return;
    ReadMaster(s);
  }
}

}  // namespace

Result<Pty> OpenPty() {
  Pty pty;
  pty.master = Fd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master.valid())
    return Status::FromErrno("cannot open a pseudo-terminal", errno);
  if (::grantpt(pty.master.get()) != 0 || ::unlockpt(pty.master.get()) != 0)
    return Status::FromErrno("cannot unlock the pseudo-terminal", errno);
  // TIOCGPTPEER opens the slave through the master (no path to race on).
  pty.slave =
      Fd(::ioctl(pty.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.slave.valid()) {
    char name[128];
    if (::ptsname_r(pty.master.get(), name, sizeof name) != 0)
      return Status::FromErrno("cannot name the pseudo-terminal", errno);
    pty.slave = Fd(::open(name, O_RDWR | O_NOCTTY | kOpenCloexec));
    if (!pty.slave.valid())
      return Status::FromErrno(std::string("cannot open '") + name + "'",
                               errno);
  }
  return pty;
}

void CopyWindowSize(int from, int master) {
  winsize ws{};
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
}

Status RawMode::Enter(int fd) {
  if (::tcgetattr(fd, &saved_) != 0)
    return Status::FromErrno("cannot read the terminal's mode", errno);
  termios raw = saved_;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSADRAIN, &raw) != 0)
    return Status::FromErrno("cannot put the terminal in raw mode", errno);
  fd_ = fd;
  return Status::Ok();
}

void RawMode::Restore() {
  if (fd_ < 0) return;
  ::tcsetattr(fd_, TCSADRAIN, &saved_);
  fd_ = -1;
}

Result<std::unique_ptr<SignalPipe>> SignalPipe::Install() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
    return Status::FromErrno("cannot create a pipe", errno);
  std::unique_ptr<SignalPipe> sp(new SignalPipe());
  sp->read_ = Fd(p[0]);
  sp->write_ = Fd(p[1]);
  g_signal_write = p[1];
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < std::size(kForwarded); ++i)
    ::sigaction(kForwarded[i], &sa, &g_saved[i]);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &g_saved_pipe);
  return sp;
}

SignalPipe::~SignalPipe() {
  for (size_t i = 0; i < std::size(kForwarded); ++i)
    ::sigaction(kForwarded[i], &g_saved[i], nullptr);
  ::sigaction(SIGPIPE, &g_saved_pipe, nullptr);
  g_signal_write = -1;
}

Result<std::string> Relay(const RelayFds& fds) {
  RelayState s(fds);
  s.master_open = fds.master >= 0;
  s.stdin_open = fds.master >= 0;
  for (;;) {
    pollfd p[4] = {{fds.socket, POLLIN, 0},
                   {fds.signals, POLLIN, 0},
                   {-1, 0, 0},
                   {-1, 0, 0}};
    if (s.master_open) {
      p[2].fd = fds.master;
      p[2].events =
          static_cast<short>(POLLIN | (s.to_master.empty() ? 0 : POLLOUT));
    }
    if (s.stdin_open && s.master_open &&
        s.to_master.size() < kMaxPendingInput) {
      p[3].fd = STDIN_FILENO;
      p[3].events = POLLIN;
    }
    if (::poll(p, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("poll", errno);
    }
    if (p[1].revents != 0) ReadSignals(s);
    if ((p[2].revents & (POLLIN | POLLHUP | POLLERR)) != 0) ReadMaster(s);
    if (s.master_open && (p[2].revents & POLLOUT) != 0) WriteMaster(s);
    if (p[3].revents != 0) ReadStdin(s);
    if (s.eof_pending && s.to_master.empty() && s.master_open) SendEof(s);
    if (p[0].revents != 0) {
      ASSIGN_OR_RETURN(bool done, ReadSocket(s));
      if (done) {
        Drain(s);
        return std::move(s.reply);
      }
    }
  }
}

}  // namespace relsupd::cli
