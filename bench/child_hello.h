#pragma once
// The datagram bench/supervise's children (supervise_child, log_writer)
// send to the benchmark's unix socket: a CLOCK_MONOTONIC time, the sender's
// pid and an instance id. Shared by the three programs so they stay in step.

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>

struct ChildHello {
  int64_t monotonic_ns;
  int32_t pid;
  char id[52];
};
static_assert(sizeof(ChildHello) == 64);

// The benchmark's socket address for `path`; false when it does not fit.
inline bool HelloAddress(const char* path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof addr->sun_path) return false;
  std::strcpy(addr->sun_path, path);
  return true;
}
