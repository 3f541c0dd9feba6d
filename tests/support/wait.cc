#include "tests/support/wait.h"

#include <chrono>
#include <thread>

namespace relsupd::support {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int RemainingMs(int64_t deadline) {
  int64_t left = deadline - NowMs();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool WaitUntil(const std::function<bool()>& pred, int timeout_ms, int pace_ms) {
  const int64_t end = NowMs() + timeout_ms;
  while (NowMs() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(pace_ms));
  }
  return pred();
}

}  // namespace relsupd::support
