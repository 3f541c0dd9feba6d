// File helpers of the supervise benchmark: writing a config, listing log
// files in the order they were written, finding a peer's programs. (What
// all benchmarks share is in bench/bench_support.h.)
//
// Free functions, no state; called from the benchmark's one thread.

#ifndef RELSUPD_BENCH_SUPERVISE_UTIL_H_
#define RELSUPD_BENCH_SUPERVISE_UTIL_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "bench/bench_support.h"

namespace relsupd::bench::supervise {

bool WriteFile(const std::string& path, const std::string& text,
               mode_t mode = 0644);

// The regular files in `dir` whose name `match` accepts, sorted by name.
std::vector<std::string> FilesIn(
    const std::string& dir,
    const std::function<bool(const std::string&)>& match);
// Rotated generations "BASE.N" ... "BASE.1" (oldest first), then "BASE":
// the order their lines were written in.
std::vector<std::string> OldestFirst(std::vector<std::string> files);
// The first executable `name` in $PATH; "" when none.
std::string FindOnPath(const std::string& name);

}  // namespace relsupd::bench::supervise

#endif  // RELSUPD_BENCH_SUPERVISE_UTIL_H_
