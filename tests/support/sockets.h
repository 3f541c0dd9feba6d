#pragma once
// Sockets for tests and benches: a raw line connection to the control
// socket (protocol and hostile-peer tests), a stand-in for systemd's notify
// socket, a TCP socket whose close() lingers, and loopback HTTP. Every fd is
// born close-on-exec. Set-up failures throw std::runtime_error (failure.h).
// Each object is used from one thread at a time (any thread).

#include <sys/un.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/fd.h"

namespace relsupd::support {

// The address of the Unix socket at `path`; throws when it is too long.
sockaddr_un UnixAddress(const std::string& path);

enum class UnixEnd { kConnect, kBind };
// A Unix socket of `type` (SOCK_STREAM, SOCK_DGRAM), close-on-exec,
// connected to or bound at `path`; throws when it cannot be.
int OpenUnixSocket(const std::string& path, int type, UnixEnd end);

// A raw connection to the control socket, for protocol tests.
class RawConn {
 public:
  explicit RawConn(const std::string& socket);  // throws when it cannot connect
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  int fd() const { return fd_; }
  // Writes all of `data`; false when the peer is gone (EPIPE, ECONNRESET).
  bool Send(std::string_view data);
  // Sends `data` with `fds` attached (SCM_RIGHTS, one sendmsg); false when
  // the peer is gone.
  bool SendWithFds(std::string_view data, const std::vector<int>& fds);
  // shutdown(SHUT_WR): the daemon sees EOF.
  void CloseWrite();
  // The next line (without '\n'), or nullopt on EOF, error or timeout.
  std::optional<std::string> ReadLine(int timeout_ms = 5'000);
  // Sends `line` + '\n' and reads the next line, parsed; throws on failure.
  nlohmann::json Exchange(std::string_view line, int timeout_ms = 5'000);

  enum class End { kEof, kReset, kTimeout, kData };
  // After any buffered lines were read: waits for the peer to close.
  End WaitEnd(int timeout_ms = 5'000);
  // What is buffered but not yet returned as a line.
  const std::string& buffered() const { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

// A stand-in for systemd's notify socket: a Unix datagram socket bound at
// `path`. Pass "NOTIFY_SOCKET=" + path() to the daemon.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }
  // The next datagram, or nullopt after timeout_ms.
  std::optional<std::string> Receive(int timeout_ms);
  // Receives until a datagram holds the line `line` (e.g. "READY=1");
  // returns that datagram, or nullopt at the deadline. Every datagram
  // received is appended to `seen` when given.
  std::optional<std::string> WaitFor(std::string_view line, int timeout_ms,
                                     std::vector<std::string>* seen = nullptr);

 private:
  std::string path_;
  int fd_ = -1;
};

// True when the newline-separated `message` holds `line` exactly.
bool HasLine(std::string_view message, std::string_view line);
// The value of "KEY=value" in `message`, or nullopt.
std::optional<std::string> Field(std::string_view message,
                                 std::string_view key);

// sendmsg of `data` to the datagram socket at `path` (a notify socket),
// with `fds` attached in `cmsgs` SCM_RIGHTS messages, plus our credentials
// when `creds`: 0 on success, else the errno of sendmsg (EPERM: the
// receiver refuses fds; EINVAL: more than SCM_MAX_FD in one message).
int SendDatagram(const std::string& path, std::string_view data,
                 const std::vector<int>& fds = {}, int cmsgs = 1, bool creds = false);

// A pipe, both ends close-on-exec. For sd_notify's barrier: pass
// `write_end`, Reset() it, and the read end hangs up once the receiver
// closed its copy too; the same for any fd sent to be closed elsewhere.
struct Pipe {
  Pipe();  // throws when it cannot be made
  // poll() says POLLHUP on `read_end` now: every copy of `write_end` is
  // closed, here and wherever it was sent.
  bool HungUp() const;

  Fd read_end;
  Fd write_end;
};

// A loopback TCP pair whose `client` end lingers on its last close()
// (SO_LINGER {1, 30 s}, a send buffer filled to the brim, a peer that never
// reads) until Release(). Pass `client` on (or TakeClient()); the
// destructor releases the peer and closes what is left without lingering.
struct LingeringSocket {
  LingeringSocket();
  ~LingeringSocket();
  LingeringSocket(const LingeringSocket&) = delete;
  LingeringSocket& operator=(const LingeringSocket&) = delete;

  // Ends the linger: the peer resets, so a close() waiting on it returns.
  void Release();
  // Gives up ownership of `client`.
  int TakeClient();

  int listener = -1;
  int server = -1;  // the accepted end, never read
  int client = -1;  // the one to pass
};

// A loopback port nobody listens on right now.
int FreePort();
// GET `path` on 127.0.0.1:port; the body, or "" when the request failed or
// the status was not 200.
std::string HttpGet(int port, const std::string& path);
// Writes `request` as it is to 127.0.0.1:port and returns every byte of the
// reply until the server closes (2 s without a byte ends it); "" when the
// connect failed.
std::string HttpRequest(int port, const std::string& request);

}  // namespace relsupd::support
