#pragma once
// NotifyListener: the daemon's sd_notify socket for its children.
//
// Children find it in NOTIFY_SOCKET and send "READY=1", "STATUS=...",
// exactly as under systemd. Each datagram arrives with the sender's
// credentials (SCM_CREDENTIALS); the owner matches the pid to an instance.
// Loop thread only.
//
// The socket is mode 0666, so anyone may send to it, fds included; we keep
// no fd store, but we accept fds and close them, because systemd's barrier
// protocol needs that: `systemd-notify --ready` (without --no-block) and
// sd_notify_barrier() send "BARRIER=1" with the write end of a pipe and wait
// for POLLHUP on the read end. Datagrams are handled in order, on the loop,
// and a message's fds go to the FdCloser only once every earlier datagram
// was handled (a READY=1 has changed the instance's state), so the sender
// learns exactly that; and a helper such as systemd-notify stays alive until
// its READY=1 was matched to its instance by its session. A BARRIER=1 has no
// other effect; its fd is closed whether or not the sender matches an
// instance (the owner's callback never sees fds).
//
// Datagrams are received with a control buffer for SCM_MAX_FD fds plus the
// credentials, so the kernel never truncates (and closes in this thread)
// what did not fit, and the fds go to the FdCloser: a close() can block
// (fd_closer.h). The socket is read only while the closer has room for a
// full message plus ControlServer's share kept for change-right peers
// (kFdRoom); otherwise reading pauses, re-checked every kPauseRetryMs and
// logged once per episode, and the datagrams wait in the socket.

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/base/fd.h"
#include "daemon/base/fd_closer.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"
#include "daemon/supervise/snapshot.h"

namespace relsupd {

// "READY=1\nSTATUS=up\n" -> {READY: 1, STATUS: up}
std::map<std::string, std::string> ParseNotifyMessage(std::string_view text);

class NotifyListener {
 public:
  using Callback = std::function<void(pid_t sender,
                                      const std::map<std::string, std::string>&)>;
  static constexpr size_t kFdRoom = 3 * FdCloser::kMaxFdsPerMessage;
  static constexpr uint64_t kPauseRetryMs = 50;

  // Binds a datagram socket at `path` (replacing a stale one), mode 0666:
  // the sender's pid, not the file mode, decides whom a message concerns.
  // `closer` must outlive the listener.
  static Result<std::unique_ptr<NotifyListener>> Open(uv_loop_t* loop,
                                                      const std::string& path,
                                                      FdCloser* closer,
                                                      Callback callback);
  // daemon-reexec (docs/reexec.md §4.2). Adopt: the socket of a handover
  // record, never bound again (the children's NOTIFY_SOCKET stays right,
  // and datagrams queued in the exec window are read at once); an image
  // from before the barrier support set SO_PASSRIGHTS off on it (its record
  // says refuses_fds), so Adopt turns it on again, whatever the record
  // says (a kernel before 6.16 has no such option: nothing to undo). Export:
  // the socket, its fd still owned here. Abandon: lets go of the fd
  // without closing or unlinking it (as an execve would; for tests).
  static std::unique_ptr<NotifyListener> Adopt(uv_loop_t* loop, const NotifySnapshot& snapshot,
                                               FdCloser* closer, Callback callback);
  NotifySnapshot Export() const {
    return {.fd = fd_.get(), .path = path_, .refuses_fds = false};
  }
  void Abandon();

  ~NotifyListener();
  const std::string& path() const { return path_; }

 private:
  NotifyListener() = default;
  void Watch(uv_loop_t* loop);
  void OnReadable();
  void StartPoll();
  static void OnRetry(uv_timer_t* timer);

  std::string path_;
  Fd fd_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> retry_;
  FdCloser* closer_ = nullptr;
  bool pause_logged_ = false;
  Callback callback_;
};

}  // namespace relsupd
