#pragma once
// Reading log files line by line, forward or backward, in bounded blocks
// (LogStore's Tail, Since and start-up scan). Stateless; called on the loop
// thread by LogStore, but touches only the files it is given.

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"

namespace relsupd {

// A "line" longer than this in a log file is corruption (records are far
// smaller); readers skip it instead of buffering it.
inline constexpr size_t kMaxLogLineBytes = 8 << 20;

// Returns false to stop the walk.
using LineFn = std::function<bool(std::string_view line)>;

// pread(2) of exactly `len` bytes at `offset`; a short file is kCorruption.
Status PreadFull(int fd, char* buf, size_t len, off_t offset,
                 const std::string& path);
// Calls fn for each non-empty line of `path`, last line first, until fn
// returns false. A final line without '\n' is passed too (a torn record
// fails to decode). A missing file has no lines. `end` >= 0: only the
// lines before that offset (a line start, as LineBoundary gives).
Status ForEachLineBackward(const std::string& path, const LineFn& fn, off_t end = -1);

// Whether a line lies at or after a point the caller looks for in a file
// whose lines are in order: true, false, or nullopt (it cannot tell: a
// torn or foreign line).
using LineAfterFn = std::function<std::optional<bool>(std::string_view line)>;
// A line start in `path` such that every line starting there or later is
// `after`, found by bisection with a few small reads (not a scan): the
// start of the first `after` line, or a little later when lines nearby
// cannot tell. The file's size when no line is `after`; 0 for a missing
// file. Lines read back from it must still be checked one by one.
Result<off_t> LineBoundary(const std::string& path, const LineAfterFn& after);
// The same, first line first.
Status ForEachLineForward(const std::string& path, const LineFn& fn);

}  // namespace relsupd
