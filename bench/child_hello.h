#pragma once
// The datagram bench/supervise's children (supervise_child, log_writer)
// send to the benchmark's unix socket: a CLOCK_MONOTONIC time, the sender's
// pid and an instance id. Shared by the three programs so they stay in step.

#include <cstdint>

struct ChildHello {
  int64_t monotonic_ns;
  int32_t pid;
  char id[52];
};
static_assert(sizeof(ChildHello) == 64);
