// The unix datagram socket on which supervise_child and log_writer say
// hello (bench/child_hello.h): their pid, id and CLOCK_MONOTONIC time.
//
// Owns its fd (close-on-exec). Single-threaded: the phases read it.

#ifndef RELSUPD_BENCH_SUPERVISE_HELLO_SOCKET_H_
#define RELSUPD_BENCH_SUPERVISE_HELLO_SOCKET_H_

#include <optional>
#include <string>

#include "bench/bench_support.h"
#include "bench/child_hello.h"

namespace relsupd::bench::supervise {

class HelloSocket : NoCopy {
 public:
  ~HelloSocket();
  // Binds `path` (replacing a stale one); false with why.
  bool Open(const std::string& path, std::string* error);
  const std::string& path() const { return path_; }
  // Next hello within `timeout_ms` (0: don't wait).
  std::optional<ChildHello> Receive(int timeout_ms);

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_HELLO_SOCKET_H_
