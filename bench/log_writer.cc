// log_writer: the service command of bench/supervise's log-throughput phase,
// run under relsupd, runit (with svlogd), supervisord and PM2 alike.
//
// Writes LINES numbered lines of LINE_BYTES bytes each (the '\n' included)
// to stdout as fast as the pipe takes them, then pauses until a signal ends
// it: a writer that exited would be restarted by every peer and write its
// lines again. Line i (0-based) is
//
//   "seq=%09d " + filler + "\n"
//
// where the filler is printable ASCII that depends on i (so that a line
// spliced from two others shows up as damaged, not as a good line), and no
// byte needs escaping in JSON. Lines are built into a 256 KiB buffer and
// written with write(2), whole buffers at a time, so the writer's own cost
// is small next to what a supervisor spends per byte.
//
// Before its first write it sends a ChildHello (see supervise_child.cc) with
// id "log.start" and the CLOCK_MONOTONIC time to the benchmark's unix
// datagram socket; after its last write returned, one with id "log.done".
//
//   log_writer SOCKET LINES LINE_BYTES
//
// Linked statically, like supervise_child.

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/child_hello.h"

namespace {


constexpr size_t kSeqBytes = 14;  // "seq=000000123 "

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void Send(int fd, const sockaddr_un& addr, const char* id, int64_t t) {
  ChildHello hello{};
  hello.monotonic_ns = t;
  hello.pid = static_cast<int32_t>(getpid());
  std::strncpy(hello.id, id, sizeof hello.id - 1);
  if (sendto(fd, &hello, sizeof hello, 0, reinterpret_cast<const sockaddr*>(&addr),
             sizeof addr) != static_cast<ssize_t>(sizeof hello))
    std::perror("log_writer: sendto");  // the benchmark reports it missing
}

bool WriteAll(const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: log_writer SOCKET LINES LINE_BYTES\n");
    return 2;
  }
  const char* socket_path = argv[1];
  const long long lines = std::atoll(argv[2]);
  const long long line_bytes = std::atoll(argv[3]);
  if (lines <= 0 || lines > 999'999'999 || line_bytes < static_cast<long long>(kSeqBytes) + 2 ||
      line_bytes > 16384) {
    std::fprintf(stderr, "log_writer: LINES must be 1..999999999, LINE_BYTES %zu..16384\n",
                 kSeqBytes + 2);
    return 2;
  }
  sockaddr_un addr;
  if (!HelloAddress(socket_path, &addr)) {
    std::fprintf(stderr, "log_writer: socket path too long: %s\n", socket_path);
    return 2;
  }
  const int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) std::perror("log_writer: socket");

  const size_t len = static_cast<size_t>(line_bytes);
  const size_t per_buffer = std::max<size_t>(1, (256 * 1024) / len);
  std::vector<char> buf(per_buffer * len);
  // 62 printable characters, none of them '"' or '\\'.
  static const char kFill[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

  bool ok = true;
  Send(sock, addr, "log.start", MonoNs());
  for (long long i = 0; i < lines && ok;) {
    size_t used = 0;
    for (size_t k = 0; k < per_buffer && i < lines; ++k, ++i) {
      char* line = buf.data() + used;
      // Modulo 10^9: nine digits always (lines stay far below), which also
      // lets GCC see that nothing is truncated (-Wformat-truncation).
      std::snprintf(line, kSeqBytes + 1, "seq=%09llu ",
                    static_cast<unsigned long long>(i) % 1000000000ULL);
      const char c = kFill[i % 62];
      std::memset(line + kSeqBytes, c, len - kSeqBytes - 1);
      line[len - 1] = '\n';
      used += len;
    }
    ok = WriteAll(buf.data(), used);
  }
  if (!ok) {
    std::perror("log_writer: write");
  } else {
    Send(sock, addr, "log.done", MonoNs());
  }
  if (sock >= 0) close(sock);
  // Do not exit: every peer would restart us and write everything again.
  for (;;) pause();
}
