// The re-exec's stand-in on its own (docs/reexec.md §6.6): forked from this
// test with a listener of its own, a Dispatcher whose `ps` says who
// answered, and the test in the daemon's place at the other end of the
// socketpair. Every wait is for a state: an answer, a handed-back fd, the
// stand-in's exit.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "daemon/base/fd_passing.h"
#include "daemon/protocol/methods.h"
#include "daemon/reexec/standin.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

constexpr int kWaitMs = 10'000;

struct StandinFixture {
  support::TempDir dir{"relsupd-standin"};
  std::string path = dir.Path("sock");
  Fd listener;
  AccessPolicy policy;
  std::optional<Standin> standin;

  explicit StandinFixture(size_t max_request_bytes = 1 << 20) {
    listener = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 64) == 0);
    auto s = StartStandin(listener.get(), {}, policy, max_request_bytes, [](Dispatcher* d) {
      d->Register(rpc::method::kPs, Right::kRead,
                  [](const Request&) -> Result<rpc::Json> { return rpc::Json{{"from", "stand-in"}}; });
    });
    REQUIRE(s.ok());
    standin = std::move(*s);
  }
  ~StandinFixture() {
    if (standin && standin->pid > 0) {
      ::kill(standin->pid, SIGKILL);
      ::waitpid(standin->pid, nullptr, 0);
    }
  }

  Fd Connect() {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
  }

  // The next connection the stand-in hands back, or an invalid Fd.
  Fd HandedBack() {
    pollfd p{standin->handback.get(), POLLIN, 0};
    if (::poll(&p, 1, kWaitMs) != 1) return Fd();
    char byte;
    std::vector<Fd> fds;
    Result<ReceivedFds> got =
        ReceiveFds(standin->handback.get(), std::span<char>(&byte, 1), 0, 1, &fds);
    if (!got.ok() || got->bytes != 1 || fds.empty()) return Fd();
    return std::move(fds.front());
  }

  // Whether the stand-in exited (and is reaped here).
  bool Exited() {
    pollfd p{standin->pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, kWaitMs) != 1) return false;
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(standin->pidfd.get()), &info,
                 WEXITED) != 0)
      return false;
    standin->pid = 0;
    return info.si_code == CLD_EXITED && info.si_status == 0;
  }
};

void Send(int fd, const std::string& data) {
  REQUIRE(::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
}

std::string ReadLine(int fd) {
  std::string out;
  char c;
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, kWaitMs) == 1 && ::recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return out;
    out += c;
  }
  return "(none: " + out + ")";
}

// All that is buffered on `fd` now, without waiting.
std::string Buffered(int fd) {
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

const std::string kPs = R"({"jsonrpc":"2.0","id":1,"method":"ps"})" "\n";
const std::string kHistory = R"({"jsonrpc":"2.0","id":2,"method":"history"})" "\n";

TEST_CASE("stand-in: answers ps, hands anything else back unread, and exits once stopped") {
  StandinFixture f;
  Fd client = f.Connect();
  Send(client.get(), kPs);
  CHECK(ReadLine(client.get()) == R"({"id":1,"jsonrpc":"2.0","result":{"from":"stand-in"}})");
  // The next line is not a ps: the connection comes back with it unread.
  Send(client.get(), kHistory);
  Fd back = f.HandedBack();
  REQUIRE(back.valid());
  CHECK(Buffered(back.get()) == kHistory);
  // An idle connection goes back at the stop; then the stand-in exits.
  Fd idle = f.Connect();
  Send(idle.get(), R"({"jsonrpc":"2.0",)");  // no whole line yet
  f.standin->stop.Reset();
  Fd idle_back = f.HandedBack();
  REQUIRE(idle_back.valid());
  CHECK(Buffered(idle_back.get()) == R"({"jsonrpc":"2.0",)");
  CHECK(f.Exited());
}

TEST_CASE("stand-in: a ps that carries files, or is longer than the daemon takes, goes back") {
  StandinFixture f(/*max_request_bytes=*/1024);
  Fd with_file = f.Connect();
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  Result<size_t> sent =
      SendFds(with_file.get(), kPs, std::span<const int>(&pipe_fds[0], 1), 0, "the ps");
  REQUIRE(sent.ok());
  REQUIRE(*sent == kPs.size());
  ::close(pipe_fds[0]);
  Fd back = f.HandedBack();
  REQUIRE(back.valid());
  // The line and its file are still there for the daemon.
  char buf[256];
  std::vector<Fd> passed;
  Result<ReceivedFds> got = ReceiveFds(back.get(), buf, MSG_DONTWAIT, 1, &passed);
  REQUIRE(got.ok());
  REQUIRE(got->bytes == kPs.size());
  CHECK(std::string(buf, got->bytes) == kPs);
  CHECK(passed.size() == 1);
  ::close(pipe_fds[1]);

  Fd long_line = f.Connect();
  const std::string big =
      R"({"jsonrpc":"2.0","id":3,"method":"ps","params":{"pad":")" + std::string(2000, 'x') + "\"}}\n";
  Send(long_line.get(), big);
  Fd long_back = f.HandedBack();
  REQUIRE(long_back.valid());
  CHECK(Buffered(long_back.get()).size() == big.size());
}

TEST_CASE("stand-in: past 8 connections of one uid, the next goes back unserved") {
  StandinFixture f;
  std::vector<Fd> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(f.Connect());
    Send(held.back().get(), kPs);
    CHECK(ReadLine(held.back().get()) == R"({"id":1,"jsonrpc":"2.0","result":{"from":"stand-in"}})");
  }
  Fd ninth = f.Connect();
  Fd back = f.HandedBack();
  CHECK(back.valid());
}

}  // namespace
}  // namespace relsupd
