#pragma once
// FakeClock: a relsupd::Clock whose time moves only when a test moves it
// (`now`, in milliseconds, read as both monotonic and wall time). Owned by
// the test; test thread only.

#include <cstdint>

#include "daemon/base/clock.h"

namespace relsupd::support {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms) : now(start_ms) {}
  int64_t MonotonicMs() const override { return now; }
  int64_t WallMs() const override { return now; }
  int64_t now;
};

}  // namespace relsupd::support
