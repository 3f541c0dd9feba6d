// supervise_child: the service command of bench/supervise's restart-latency
// test, run under relsupd, runit, supervisord and PM2 alike.
//
// On start it reads CLOCK_MONOTONIC, sends one datagram to the benchmark's
// unix datagram socket and then sleeps until a signal ends it. The datagram
// is a ChildHello (bench/child_hello.h): the time, its pid and an instance id, so that the
// benchmark can tell which instance was replaced and when the replacement
// reached main(). Linked statically (no dynamic loader at each start), it
// does nothing before the clock read but what the kernel's exec and libc's
// start-up do, and the same for every supervisor.
//
//   supervise_child [SOCKET [ID]]
//
// SOCKET defaults to $SUPERVISE_SOCK (runit runs ./run without arguments).
// ID defaults to $RELSUPD_PROCESS ("child.3" under relsupd), else the last
// component of the working directory (runsv runs ./run in the service
// directory).

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/child_hello.h"

int main(int argc, char** argv) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ChildHello hello{};
  hello.monotonic_ns = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  hello.pid = static_cast<int32_t>(getpid());

  const char* socket_path = argc > 1 ? argv[1] : std::getenv("SUPERVISE_SOCK");
  if (socket_path == nullptr || *socket_path == '\0') {
    std::fprintf(stderr, "supervise_child: no socket (argv[1] or SUPERVISE_SOCK)\n");
    return 2;
  }
  const char* id = argc > 2 ? argv[2] : std::getenv("RELSUPD_PROCESS");
  char cwd[4096];
  if (id == nullptr && getcwd(cwd, sizeof cwd) != nullptr) {
    const char* slash = std::strrchr(cwd, '/');
    id = slash != nullptr ? slash + 1 : cwd;
  }
  // Truncated to fit, always terminated (hello is zeroed).
  if (id == nullptr) id = "?";
  std::memcpy(hello.id, id, std::min(std::strlen(id), sizeof hello.id - 1));

  sockaddr_un addr;
  if (!HelloAddress(socket_path, &addr)) {
    std::fprintf(stderr, "supervise_child: socket path too long: %s\n", socket_path);
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      sendto(fd, &hello, sizeof hello, 0, reinterpret_cast<sockaddr*>(&addr),
             sizeof addr) != static_cast<ssize_t>(sizeof hello)) {
    // Keep running anyway: a supervisor that sees us exit would restart us
    // in a loop; the benchmark reports the missing message as a timeout.
    std::perror("supervise_child: sendto");
  }
  if (fd >= 0) close(fd);
  for (;;) pause();
}
