// FdCloser: fds handed over are closed on its thread, a close() that blocks
// holds neither the caller nor the queue's accounting, and room() falls to
// 0 at capacity so that readers can pause.
#include "daemon/base/fd_closer.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/support/sockets.h"
#include "tests/support/wait.h"

namespace relsupd {
namespace {

using support::LingeringSocket;
using support::NowMs;
using support::WaitUntil;

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST_CASE("FdCloser closes what it is given, on its own thread") {
  FdCloser closer(16);
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  std::deque<Fd> fds;
  fds.emplace_back(p[0]);
  fds.emplace_back(p[1]);
  closer.CloseAll(&fds);
  CHECK(fds.empty());
  CHECK(WaitUntil([&] { return closer.pending() == 0; }));
  CHECK(WaitUntil([&] { return !IsOpen(p[0]) && !IsOpen(p[1]); }));
  CHECK(closer.room() == 16);
  closer.Close(Fd());  // an empty Fd is ignored
  CHECK(closer.pending() == 0);
  CHECK(closer.empty());
}

TEST_CASE("FdCloser: a close() that lingers holds neither the caller nor the loop's count") {
  LingeringSocket l;
  FdCloser closer(8);
  int64_t t0 = NowMs();
  closer.Close(Fd(l.TakeClient()));
  CHECK(NowMs() - t0 < 50);  // handed over, not closed here
  CHECK(WaitUntil([&] { return closer.stuck_ms() > 100; }));
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
  CHECK_FALSE(closer.empty());
  l.Release();
  CHECK(WaitUntil([&] { return closer.pending() == 0; }));
  CHECK(closer.empty());
  CHECK(closer.stuck_ms() == 0);
  CHECK(closer.room() == 8);
}

TEST_CASE("FdCloser: destroyed while a close() is stuck, it returns after its deadline") {
  LingeringSocket l;
  int64_t t0 = NowMs();
  {
    FdCloser closer;
    closer.Close(Fd(l.TakeClient()));
    REQUIRE(WaitUntil([&] { return closer.stuck_ms() > 0; }));
  }
  int64_t took = NowMs() - t0;
  CHECK(took >= 1'900);
  CHECK(took < 5'000);
  l.Release();  // the thread left behind finishes and exits
}

}  // namespace
}  // namespace relsupd
