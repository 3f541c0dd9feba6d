#pragma once
// AppSockets: the listening sockets the daemon holds for apps.
//
// An app's named sockets ("http" = tcp://0.0.0.0:8080, "admin" =
// unix:/run/shop/admin.sock) are bound by the daemon, so a privileged port
// works for an unprivileged app, and passed to every instance that lists
// them, as systemd socket activation does (LISTEN_FDS from fd 3). The same
// socket serves the old and the new release during a start-first switch,
// so no client is refused.
//
// A socket is open only while something can serve it: once no instance
// that lists it is alive or about to be (the app stopped, every instance of
// its types failed), it is closed, so clients are refused at once by the
// kernel (ECONNREFUSED) instead of waiting in a listen backlog nobody
// accepts from; the next spawn that needs it binds it again (Open). The
// kernel refuses, so a flood of connects costs the loop nothing. Records
// follow the app's spec (For); a record's socket may be closed. Loop thread
// only.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"
#include "daemon/config/app_spec.h"
#include "daemon/config/process_file.h"

namespace relsupd {

// When For binds the sockets it records.
enum class SocketBind {
  kNow,      // bind every closed one now: a bind error fails the call
  kAtSpawn,  // leave closed ones closed; the first spawn that needs one
             // binds it (a stop-first switch: the old release may hold
             // the port itself until it stopped)
};

// One open daemon-held socket in a daemon-reexec handover record
// (docs/reexec.md §4.4); the fd is a plain number, owned by AppSockets
// until the exec and by the new image's AppSockets after Adopt.
struct AppSocketSnapshot {
  std::string app;
  std::string name;
  std::string address;  // "tcp://0.0.0.0:8080", "unix:/run/x.sock"
  int fd = -1;
  bool operator==(const AppSocketSnapshot&) const = default;
};

// Where an app's unix socket may never be: the daemon's own sockets, and
// anything beneath its state directory.
struct UnixSocketGuard {
  std::string state_dir;
  std::vector<std::string> daemon_sockets;  // absolute paths
};

// The directory `dir` of a unix socket (absolute), walked from '/' one
// component at a time, each opened beneath the one before it and following
// no link (a link anywhere: FailedPrecondition "symbolic link"; a '.' or
// '..' component: InvalidArgument). At the first component that does not
// exist, the deepest existing directory is checked against the state
// directory (never made in it); then kCheck returns NotFound, and kMake
// makes it and the rest (mode 0755 whatever the daemon's umask, as systemd
// makes a socket unit's, so a socket under /run comes back after a reboot
// emptied /run), logging each. Returns the socket's directory (O_PATH).
// Loop thread only (it sets the thread's own umask).
enum class SocketDirs { kCheck, kMake };
Result<Fd> WalkSocketDirs(const std::string& dir, const UnixSocketGuard& guard,
                          const std::string& address, SocketDirs mode);

class AppSockets {
 public:
  // Set before the first bind (the daemon's start).
  void set_guard(UnixSocketGuard guard) { guard_ = std::move(guard); }
  // Records `spec`'s sockets (closing one whose address changed, and those
  // the spec no longer names) and returns their fds by name, binding the
  // closed ones per `bind` (-1 for one left closed).
  Result<std::map<std::string, int>> For(const AppSpec& spec,
                                         SocketBind bind = SocketBind::kNow);
  // The fd of the app's socket `name`, bound again if it was closed; -1
  // when the app has no such socket or it cannot be bound (logged). Each
  // spawn looks its sockets up here, so a restart after the app's sockets
  // changed gets the current ones, never a closed (or reused) fd number.
  int Open(const std::string& app, const std::string& name);
  // Closes the app's open sockets not named in `serving` (the sockets
  // some live instance lists). Returns the names closed.
  std::vector<std::string> CloseIdle(const std::string& app,
                                     const std::set<std::string>& serving);
  // `app delete`: closes and forgets every socket of the app, and removes
  // the files of its unix sockets.
  void Forget(const std::string& app);
  // Whether the app's socket `name` is open now.
  bool IsOpen(const std::string& app, const std::string& name) const;

  // daemon-reexec. Export: the open sockets, their fds still owned here.
  // Adopt: REQUIRES none held yet; takes ownership of each socket's fd as
  // the open socket of (app, name) at `address`, never bound again (the
  // apps hold the same sockets: no connection is refused). The fds were
  // checked to be listening sockets (reexec/handover_fds.cc). Abandon:
  // lets go of every fd without closing it (as an execve would; for
  // in-process tests).
  std::vector<AppSocketSnapshot> Export() const;
  void Adopt(const std::vector<AppSocketSnapshot>& sockets);
  void Abandon();

 private:
  struct Held {
    std::string address;
    Fd fd;  // invalid while closed
  };
  std::map<std::pair<std::string, std::string>, Held> held_;  // (app, name)
  UnixSocketGuard guard_;
};

// Binds and listens on "tcp://HOST:PORT" or "unix:/PATH" (close-on-exec,
// blocking: the children accept on it). A unix path is refused where a
// directory on it is a symbolic link, and where `guard` forbids it.
Result<Fd> BindListener(const std::string& address, const UnixSocketGuard& guard);
// What BindListener would refuse about a unix address's directory, checked
// without binding (app create: a link on the path, the daemon's own
// socket, the state dir); a directory that does not exist yet passes.
Status CheckUnixSocketPath(const std::string& address, const UnixSocketGuard& guard);

// Which type gets the app's sockets when the process file maps none: when
// no type of `processes` lists a socket (a Procfile never does; a
// relsupd.yaml without `sockets:`), every socket of `spec` goes to the
// `web` type, as Heroku routes traffic to `web` only. A file that maps any
// socket is left as it is.
void GiveSocketsToWeb(const AppSpec& spec, ProcessFile* processes);

// The PORT a process type binds itself: its `env` PORT, else the
// release's `config` one, when the type has no daemon-held socket; none
// otherwise.
std::optional<std::string> OwnPort(const ProcessSpec& process,
                                   const std::map<std::string, std::string>& config);

// A scale past 1 of a type that binds its PORT itself (OwnPort): each
// instance after the first fails to listen on it unless the app sets
// SO_REUSEPORT. One warning a type of `scales`, naming it and the fixes.
std::vector<std::string> SharedPortWarnings(const ProcessFile& processes,
                                            const std::map<std::string, std::string>& config,
                                            const std::map<std::string, int>& scales);

// A start-first switch to `processes` while the app runs, refused when a
// type that will run (`formation`, else its file scale, above 0) has no
// daemon-held socket but a PORT in its environment (`config`, then the
// type's `env`): it binds the port itself, so the new instances could not
// bind it while the old ones hold it. FailedPrecondition naming the type
// and the fixes; the caller adds which app and release.
Status CheckStartFirstPorts(const ProcessFile& processes,
                            const std::map<std::string, std::string>& config,
                            const std::map<std::string, int>& formation);

}  // namespace relsupd
