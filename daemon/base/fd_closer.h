#pragma once
// FdCloser: closes file descriptors on a thread of its own, so that a
// close() that blocks never holds the event loop.
//
// close() can block: the last copy of a TCP socket with SO_LINGER set and a
// full send buffer waits for the linger time, a file on a FUSE mount waits
// for its server (forever, if it wants). Fds the daemon receives from
// peers (SCM_RIGHTS on the control socket, on the apps' notify socket) and
// did not ask for are therefore handed here instead of being closed where
// they arrive.
//
// Threads: Close() and room() run on any thread (the loop's, in practice);
// one dedicated thread, started by the constructor, does the close() calls.
// What crosses threads is the fd numbers only, moved into a queue under a
// mutex; ownership goes with them (the caller's Fd is emptied). Nothing
// else is shared.
//
// Bounds: the queue holds `capacity` fds before room() says 0. Close()
// itself never refuses and never waits (a caller that already holds an fd
// has nowhere better to put it); callers keep the queue bounded by reading
// from peers only while room() is at least the most fds one message can
// carry (kMaxFdsPerMessage), see ControlServer and NotifyListener. When
// the thread is stuck in a close() the queue fills, room() drops to 0 and
// those readers pause: the peers wait, the loop does not. stuck_ms() says
// how long the current close() has taken, for a log line.
//
// The destructor lets the thread finish the queue for up to 2 s, then
// leaves it behind (detached, holding its own reference to the queue) when
// a close() is still stuck; the process is ending anyway.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "daemon/base/fd.h"

namespace relsupd {

class FdCloser {
 public:
  // SCM_MAX_FD in the kernel: one message carries at most this many fds.
  static constexpr size_t kMaxFdsPerMessage = 253;
  static constexpr size_t kDefaultCapacity = 4096;

  explicit FdCloser(size_t capacity = kDefaultCapacity);
  ~FdCloser();
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

  // Takes `fd` and closes it later on the closer thread (an invalid Fd is
  // ignored). Never blocks on a close().
  void Close(Fd fd);
  // The same for every fd in `fds`, which is left empty.
  void CloseAll(std::deque<Fd>* fds);
  // How many more fds fit before the queue is at capacity (0 when over).
  size_t room() const;
  // Fds queued or being closed right now.
  size_t pending() const;
  // Nothing queued and no close() running: an exec now closes none of the
  // fds handed here (daemon-reexec waits for this, docs/reexec.md §2.5).
  bool empty() const { return pending() == 0; }
  // How long the close() now running has taken, in ms (0 when idle).
  int64_t stuck_ms() const;
  size_t capacity() const { return capacity_; }

 private:
  struct Shared;
  static void Run(std::shared_ptr<Shared> shared);

  size_t capacity_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace relsupd
