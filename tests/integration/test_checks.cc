// Health checks on a real loop against real loopback sockets: the tcp
// check decided at once (CheckTcpAtOnce), the loop's try (CheckAttempt)
// and the HealthMonitor built on both.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "daemon/base/fd.h"
#include "daemon/supervise/check_attempt.h"
#include "daemon/supervise/health.h"
#include "tests/integration/run_loop.h"

namespace relsupd {
namespace {

// A loopback TCP socket bound to a free port; listening when `listen`.
struct Port {
  Fd fd;
  int port = 0;
  explicit Port(bool listen) {
    fd = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    if (listen) REQUIRE(::listen(fd.get(), 64) == 0);
  }
  // Accepts (and closes) what is pending; returns how many.
  int AcceptAll() {
    int n = 0;
    for (int c; (c = ::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) ::close(c);
    return n;
  }
};

ReadyCheck Tcp(int port) {
  ReadyCheck c;
  c.kind = ReadyKind::kTcp;
  c.port = port;
  return c;
}

std::string Refused(int port) {
  return "tcp 127.0.0.1:" + std::to_string(port) + ": connection refused";
}

}  // namespace

TEST_CASE("checks: a loopback tcp check is decided at once") {
  Port open(/*listen=*/true);
  auto passed = CheckTcpAtOnce(Tcp(open.port));
  REQUIRE(passed.has_value());
  CHECK(passed->passed);
  CHECK(passed->detail.empty());
  CHECK(open.AcceptAll() == 1);  // one real connection, ended by the check

  Port closed(/*listen=*/false);  // bound, not listening: refused
  auto refused = CheckTcpAtOnce(Tcp(closed.port));
  REQUIRE(refused.has_value());
  CHECK_FALSE(refused->passed);
  CHECK(refused->detail == Refused(closed.port));

  ReadyCheck http;
  http.kind = ReadyKind::kHttp;
  http.target = "http://127.0.0.1:1/";
  CHECK_FALSE(CheckTcpAtOnce(http).has_value());  // not a tcp check: the loop's
}

TEST_CASE("checks: the loop's tcp try says the same as the one at once") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Port closed(/*listen=*/false);
    std::optional<CheckResult> got;
    auto attempt = CheckAttempt::Start(&loop, Tcp(closed.port), SpawnRequest{}, 2'000,
                                       [&](CheckResult r) { got = r; });
    REQUIRE(attempt.ok());
    CHECK_FALSE(got.has_value());  // never inside Start
    REQUIRE(support::RunLoopUntil(&loop, [&] { return got.has_value(); }));
    CHECK_FALSE(got->passed);
    CHECK(got->detail == Refused(closed.port));
  }
  uv_run(&loop, UV_RUN_NOWAIT);  // the handles' close callbacks
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("checks: a health monitor passes on a listener and gives up on a refused port") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    HealthCheck health;
    health.interval_ms = 50;
    health.timeout_ms = 1'000;
    health.failures = 3;

    Port open(/*listen=*/true);
    health.check = Tcp(open.port);
    std::optional<std::string> open_unhealthy;
    HealthMonitor good(&loop, health, SpawnRequest{}, 0, nullptr,
                       [&](const std::string& why) { open_unhealthy = why; });
    int accepted = 0;
    REQUIRE(support::RunLoopUntil(&loop, [&] {
      accepted += open.AcceptAll();
      return accepted >= 4;
    }));
    CHECK(good.failures_in_row() == 0);
    CHECK_FALSE(open_unhealthy.has_value());

    Port closed(/*listen=*/false);
    health.check = Tcp(closed.port);
    std::optional<std::string> why;
    HealthMonitor bad(&loop, health, SpawnRequest{}, 0, nullptr,
                      [&](const std::string& w) { why = w; });
    REQUIRE(support::RunLoopUntil(&loop, [&] { return why.has_value(); }));
    CHECK(*why == Refused(closed.port) + " (3 times in a row)");
    CHECK(bad.failures_in_row() == 3);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace relsupd
