// FdCloser: fds handed over are closed on its thread, a close() that blocks
// holds neither the caller nor the queue's accounting, and room() falls to
// 0 at capacity so that readers can pause.
#include "daemon/base/fd_closer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <thread>

namespace relsupd {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

bool WaitFor(const std::function<bool()>& pred, int timeout_ms = 5'000) {
  int64_t end = NowMs() + timeout_ms;
  while (NowMs() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

// A loopback TCP pair whose client end lingers on close() (SO_LINGER
// {1, 30 s}, full send buffer, a peer that never reads) until Release().
struct Lingering {
  int listener = -1, server = -1, client = -1;
  Lingering() {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int small = 4096;
    ::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a);
    server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(server >= 0);
    linger lg{1, 30};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    char junk[4096] = {};
    while (::send(client, junk, sizeof junk, MSG_NOSIGNAL) > 0) {
    }
  }
  void Release() {  // RST from the peer ends the client's linger
    if (server < 0) return;
    linger abort{1, 0};
    ::setsockopt(server, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    ::close(server);
    server = -1;
  }
  ~Lingering() {
    Release();
    ::close(listener);
  }
};

TEST_CASE("FdCloser closes what it is given, on its own thread") {
  FdCloser closer(16);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  std::deque<Fd> fds;
  fds.emplace_back(p[0]);
  fds.emplace_back(p[1]);
  closer.CloseAll(&fds);
  CHECK(fds.empty());
  CHECK(WaitFor([&] { return closer.pending() == 0; }));
  CHECK(WaitFor([&] { return !IsOpen(p[0]) && !IsOpen(p[1]); }));
  CHECK(closer.room() == 16);
  closer.Close(Fd());  // an empty Fd is ignored
  CHECK(closer.pending() == 0);
}

TEST_CASE("FdCloser: a close() that lingers holds neither the caller nor the loop's count") {
  Lingering l;
  FdCloser closer(8);
  int64_t t0 = NowMs();
  closer.Close(Fd(l.client));
  CHECK(NowMs() - t0 < 50);  // handed over, not closed here
  CHECK(WaitFor([&] { return closer.stuck_ms() > 100; }));
  // The queue fills behind it; room() tells readers to pause, and Close()
  // still never blocks.
  std::vector<int> queued;
  for (int i = 0; i < 10; ++i) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    queued.push_back(fd);
    t0 = NowMs();
    closer.Close(Fd(fd));
    CHECK(NowMs() - t0 < 50);
  }
  CHECK(closer.room() == 0);
  CHECK(closer.pending() == 11);
  l.Release();
  CHECK(WaitFor([&] { return closer.pending() == 0; }));
  CHECK(closer.stuck_ms() == 0);
  CHECK(closer.room() == 8);
}

TEST_CASE("FdCloser: destroyed while a close() is stuck, it returns after its deadline") {
  Lingering l;
  int64_t t0 = NowMs();
  {
    FdCloser closer;
    closer.Close(Fd(l.client));
    REQUIRE(WaitFor([&] { return closer.stuck_ms() > 0; }));
  }
  int64_t took = NowMs() - t0;
  CHECK(took >= 1'900);
  CHECK(took < 5'000);
  l.Release();  // the thread left behind finishes and exits
}

}  // namespace
}  // namespace relsupd
