// daemon/reexec: the handover's sealed memfd, and the fds that cross the
// exec: the list a record names, FD_CLOEXEC off and on, and the checks the
// new image runs on each (real sockets, pipes and pidfds of this process).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "daemon/reexec/handover_fds.h"
#include "daemon/reexec/memfd.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

using support::TempDir;

bool Cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// A unix socket of `type` bound to `path` (listening when a stream).
Fd Bound(const std::string& path, int type) {
  Fd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  if (type == SOCK_STREAM) REQUIRE(::listen(fd.get(), 8) == 0);
  return fd;
}

Fd PidfdOf(pid_t pid) {
  Fd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  REQUIRE(fd.valid());  // pidfd_open sets FD_CLOEXEC itself
  return fd;
}

TEST_CASE("the handover memfd is sealed, close-on-exec, and reads back the record") {
  HandoverRecord r;
  r.writer = "0.9.0";
  r.one_offs_next_id = 42;
  Result<Fd> fd = WriteHandover(r);
  REQUIRE(fd.ok());
  CHECK(Cloexec(fd->get()));
  // Sealed: neither image can change it.
  CHECK(::write(fd->get(), "x", 1) == -1);
  CHECK(::ftruncate(fd->get(), 0) == -1);
  Result<HandoverRecord> back = ReadHandover(fd->get());
  REQUIRE(back.ok());
  CHECK(back->writer == "0.9.0");
  CHECK(back->one_offs_next_id == 42);
}

TEST_CASE("an fd that is not a sealed memfd is not read as a handover") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd r(p[0]), w(p[1]);
  CHECK_THAT(ReadHandover(r.get()).status().message(),
             Catch::StartsWith("handover fd " + std::to_string(r.get()) + " is not a memfd"));
  Fd open_memfd(::memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  REQUIRE(open_memfd.valid());
  CHECK(ReadHandover(open_memfd.get()).status().message() ==
        "handover fd " + std::to_string(open_memfd.get()) + " is not sealed");
  Result<Fd> garbage = WriteSealedMemfd("not a handover");
  REQUIRE(garbage.ok());
  CHECK(ReadHandover(garbage->get()).status().message() ==
        "the handover is 14 bytes, shorter than its header");
}

TEST_CASE("the fds a record names are listed once, and CLOEXEC goes off and on") {
  HandoverRecord r;
  r.fds = {.lock = 3, .listener = 4, .self_exe = -1};
  r.notify = NotifySnapshot{.fd = 6, .path = "", .refuses_fds = false};
  r.request.emplace().conn_fd = 7;
  r.app_sockets = {{.app = "a", .name = "http", .address = "", .fd = 9}};
  InstanceSnapshot i;
  i.child = ChildFds{.pid = 1, .pidfd = 10, .out_fd = 11, .err_fd = -1, .paused = false};
  GroupSnapshot g;
  g.instances = {i};
  r.supervisor.apps = {AppSnapshot{.app = "a", .active = g, .retiring = {g}}};
  r.supervisor.reap = {{.pid = 2, .pidfd = 12}};
  CHECK(HandoverFdList(r) == std::vector<int>{3, 4, 6, 7, 9, 10, 11, 12});

  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd a(p[0]), b(p[1]);
  REQUIRE(ClearCloexec({a.get(), b.get()}).ok());
  CHECK_FALSE(Cloexec(a.get()));
  CHECK_FALSE(Cloexec(b.get()));
  REQUIRE(SetCloexec({a.get(), b.get()}).ok());
  CHECK(Cloexec(a.get()));
  CHECK(Cloexec(b.get()));
  CHECK_THAT(SetCloexec({a.get(), 999'999}).message(), Catch::StartsWith("fd 999999: "));
}

TEST_CASE("each kind of carried fd passes its own check and fails the others") {
  TempDir dir;
  Fd listener = Bound(dir / "ctl.sock", SOCK_STREAM);
  Fd notify = Bound(dir / "notify", SOCK_DGRAM);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd out(p[0]), in(p[1]);
  Fd self = PidfdOf(getpid());
  CHECK(CheckListener(listener.get(), dir / "ctl.sock").ok());
  CHECK(CheckListener(listener.get(), "").ok());
  CHECK(CheckListener(listener.get(), dir / "other").message() ==
        "fd " + std::to_string(listener.get()) + ": bound to '" + dir / "ctl.sock" +
            "', not '" + dir / "other" + "'");
  CHECK(CheckDatagram(notify.get(), dir / "notify").ok());
  CHECK(CheckListener(notify.get(), "").message() ==
        "fd " + std::to_string(notify.get()) + ": a socket that is not listening");
  CHECK(CheckDatagram(listener.get(), dir / "ctl.sock").message() ==
        "fd " + std::to_string(listener.get()) + ": not a datagram socket");
  CHECK(CheckFifo(out.get()).ok());
  CHECK(CheckFifo(listener.get()).message() ==
        "fd " + std::to_string(listener.get()) + ": not a pipe");
  CHECK(CheckListener(out.get(), "").message() ==
        "fd " + std::to_string(out.get()) + ": not a socket");
  CHECK(CheckPidfd(self.get(), getpid()).ok());
  CHECK(CheckPidfd(self.get(), getpid() + 1).message() ==
        "fd " + std::to_string(self.get()) + ": a pidfd of pid " + std::to_string(getpid()) +
            ", not " + std::to_string(getpid() + 1));
  CHECK(CheckPidfd(out.get(), getpid()).message() ==
        "fd " + std::to_string(out.get()) + ": not a pidfd");
  CHECK(CheckRegularFile(out.get()).message() ==
        "fd " + std::to_string(out.get()) + ": not a regular file");
}

TEST_CASE("a connection's peer and the state dir's lock are checked by identity") {
  TempDir dir;
  int sp[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
  Fd a(sp[0]), b(sp[1]);
  CHECK(CheckPeer(a.get(), getpid(), getuid()).ok());
  CHECK_THAT(CheckPeer(a.get(), getpid() + 1, getuid()).message(),
             Catch::Contains(", not pid " + std::to_string(getpid() + 1)));
  std::ofstream(dir / "relsupd.lock") << "";
  std::ofstream(dir / "other") << "";
  Fd lock(::open((dir / "relsupd.lock").c_str(), O_RDONLY | O_CLOEXEC));
  Fd other(::open((dir / "other").c_str(), O_RDONLY | O_CLOEXEC));
  CHECK(CheckLockFile(lock.get(), dir.path()).ok());
  CHECK(CheckRegularFile(lock.get()).ok());
  CHECK(CheckLockFile(other.get(), dir.path()).message() ==
        "fd " + std::to_string(other.get()) + ": not '" + dir / "relsupd.lock" + "'");
}

TEST_CASE("CheckHandoverFds checks every fd of a record, and refuses one named twice") {
  TempDir dir;
  Fd listener = Bound(dir / "ctl.sock", SOCK_STREAM);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd out(p[0]), in(p[1]);
  Fd pidfd = PidfdOf(getpid());
  HandoverRecord r;
  r.config.socket = dir / "ctl.sock";
  r.fds.listener = listener.get();
  InstanceSnapshot i;
  i.child = ChildFds{.pid = getpid(), .pidfd = pidfd.get(), .out_fd = out.get(), .err_fd = -1,
                     .paused = false};
  GroupSnapshot g;
  g.instances = {i};
  r.supervisor.apps = {AppSnapshot{.app = "a", .active = g, .retiring = {}}};
  CHECK(CheckHandoverFds(r).ok());
  r.supervisor.apps[0].active->instances[0].child->err_fd = out.get();
  CHECK(CheckHandoverFds(r).message() == "the handover names an fd twice");
  r.supervisor.apps[0].active->instances[0].child->err_fd = in.get();
  CHECK(CheckHandoverFds(r).ok());  // a pipe either way
  r.supervisor.apps[0].active->instances[0].child->pid = getpid() + 1;
  CHECK_THAT(CheckHandoverFds(r).message(), Catch::Contains(": a pidfd of pid "));
}

}  // namespace
}  // namespace relsupd
