#pragma once
// NotifyListener: the daemon's sd_notify socket for its children.
//
// Children find it in NOTIFY_SOCKET and send "READY=1", "STATUS=...",
// exactly as under systemd. Each datagram arrives with the sender's
// credentials (SCM_CREDENTIALS); the owner matches the pid to an instance.
// Passed fds are closed (no fd store). Loop thread only.

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/base/uv_handle.h"

namespace relsupd {

// "READY=1\nSTATUS=up\n" -> {READY: 1, STATUS: up}
std::map<std::string, std::string> ParseNotifyMessage(std::string_view text);

class NotifyListener {
 public:
  using Callback = std::function<void(pid_t sender,
                                      const std::map<std::string, std::string>&)>;
  // Binds a datagram socket at `path` (replacing a stale one), mode 0666:
  // the sender's pid, not the file mode, decides whom a message concerns.
  static Result<std::unique_ptr<NotifyListener>> Open(uv_loop_t* loop,
                                                      const std::string& path,
                                                      Callback callback);
  ~NotifyListener();
  const std::string& path() const { return path_; }

 private:
  NotifyListener() = default;
  void OnReadable();

  std::string path_;
  Fd fd_;
  UvHandle<uv_poll_t> poll_;
  Callback callback_;
};

}  // namespace relsupd
