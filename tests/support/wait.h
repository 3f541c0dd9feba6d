#pragma once
// Waiting for a state, never for a wall-clock margin: a monotonic clock in
// milliseconds and a poll with a deadline. Any thread.

#include <cstdint>
#include <functional>

namespace relsupd::support {

// Milliseconds on the monotonic clock.
int64_t NowMs();

// Milliseconds left until `deadline` (a NowMs() value), 0 when it passed.
int RemainingMs(int64_t deadline);

// Polls `pred` every `pace_ms` until it holds (true) or `timeout_ms`
// passed (false; `pred` is asked once more at the deadline).
bool WaitUntil(const std::function<bool()>& pred, int timeout_ms = 10'000,
               int pace_ms = 10);

}  // namespace relsupd::support
