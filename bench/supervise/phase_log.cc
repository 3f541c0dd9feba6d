// Phase 4 of the supervise benchmark, log throughput (see phases.h).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/supervise/phases.h"
#include "daemon/logs/log_record.h"
#include "bench/supervise/proc.h"
#include "bench/supervise/util.h"

namespace relsupd::bench::supervise {
namespace {

namespace fs = std::filesystem;

// Calls `line` with each line of the files in `paths`, read as one stream
// (without its '\n'; a last line without one too). False when a file cannot
// be read.
bool ForEachLine(const std::vector<std::string>& paths,
                 const std::function<void(std::string_view)>& line) {
  std::vector<char> buf(4 << 20);
  size_t have = 0;
  bool ok = true;
  for (const auto& path : paths) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ok = false;
      continue;
    }
    for (;;) {
      ssize_t n = read(fd, buf.data() + have, buf.size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ok = false;
      if (n <= 0) break;
      have += static_cast<size_t>(n);
      size_t start = 0;
      for (;;) {
        const void* nl = std::memchr(buf.data() + start, '\n', have - start);
        if (!nl) break;
        const size_t end =
            static_cast<size_t>(static_cast<const char*>(nl) - buf.data());
        line(std::string_view(buf.data() + start, end - start));
        start = end + 1;
      }
      std::memmove(buf.data(), buf.data() + start, have - start);
      have -= start;
      if (have == buf.size()) buf.resize(buf.size() * 2);  // a line over 4 MiB
    }
    close(fd);
  }
  if (have > 0) line(std::string_view(buf.data(), have));
  return ok;
}

// The writer's "log.start" hello within 60 s; none when it did not come.
std::optional<ChildHello> WaitLogStart(HelloSocket& hello) {
  std::optional<ChildHello> start;
  const int64_t start_deadline = MonoNs() + 60'000'000'000;
  while (!start && MonoNs() < start_deadline && !g_interrupted.load()) {
    auto h = hello.Receive(100);
    if (h && std::strcmp(h->id, "log.start") == 0) start = h;
  }
  return start;
}

// Polls the peer's log files every 2 ms (the tail of each file that grew)
// until the last line (`lines` - 1) is in one: its monotonic ns in
// *last_ns, -1 on a timeout (then res->log_timeout says why); the writer's
// "log.done" time, when it came meanwhile, in *done_ns.
void WaitLastLine(Peer& peer, HelloSocket& hello, const Options& o, int64_t t0,
                  int64_t lines, PeerResult* res, int64_t* done_ns_out,
                  int64_t* last_ns_out) {
  const size_t line_bytes = static_cast<size_t>(o.log_line_bytes);
  char marker[32];
  std::snprintf(marker, sizeof marker, "seq=%09lld ",
                static_cast<long long>(lines - 1));
  // Give up 10 s after the files stopped growing once the writer is done,
  // or at 1 MB/s.
  const int64_t deadline = t0 + std::max<int64_t>(60, o.log_mb) * 1'000'000'000;
  int64_t& done_ns = *done_ns_out;
  int64_t& last_ns = *last_ns_out;
  int64_t total = 0, last_total = -1, last_growth = MonoNs();
  std::map<std::string, int64_t> seen_size;
  std::string tail;
  while (!g_interrupted.load()) {
    while (auto h = hello.Receive(0))
      if (std::strcmp(h->id, "log.done") == 0) done_ns = h->monotonic_ns;
    bool found = false;
    total = 0;
    for (const auto& f : peer.LogFiles()) {
      int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      struct stat st {};
      if (fstat(fd, &st) == 0) {
        total += st.st_size;
        int64_t& size = seen_size[f];
        if (!found && st.st_size > 0 && st.st_size != size) {
          const size_t want = std::min<size_t>(static_cast<size_t>(st.st_size),
                                               line_bytes + 4096);
          tail.resize(want);
          ssize_t n = pread(fd, tail.data(), want,
                            st.st_size - static_cast<off_t>(want));
          found = n > 0 && tail.find(marker) != std::string::npos;
        }
        size = st.st_size;
      }
      close(fd);
    }
    const int64_t now = MonoNs();
    if (found) {
      last_ns = now;
      break;
    }
    if (total != last_total) {
      last_total = total;
      last_growth = now;
    }
    if (done_ns >= 0 && now - last_growth > 10'000'000'000) {
      res->log_timeout =
          "the last line was not in the log files 10 s after the writer's last "
          "write";
      break;
    }
    if (now > deadline) {
      res->log_timeout =
          std::string("the last line was not in the log files within ") +
          std::to_string((deadline - t0) / 1'000'000'000) + " s (writer " +
          (done_ns >= 0 ? "done" : "still writing") + ")";
      break;
    }
    usleep(2000);
  }
}

// Reads every line of every file and counts, in `res`, the sequence
// numbers never seen, those seen twice and the lines that are not one the
// writer wrote.
void CheckLines(Peer& peer, int64_t lines, size_t line_bytes, PeerResult* res) {
  // Every line of every file: which sequence numbers are there, how often.
  std::vector<uint8_t> count(static_cast<size_t>(lines), 0);
  static const char kFill[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const bool records = peer.LogIsRecords();
  auto check = [&](std::string_view text) {
    // "seq=%09d " + (line_bytes - 15) x kFill[i % 62], the '\n' gone.
    if (text.size() != line_bytes - 1 || !text.starts_with("seq=") ||
        text[13] != ' ') {
      ++res->log_damaged;
      return;
    }
    int64_t i = 0;
    for (size_t k = 4; k < 13; ++k) {
      if (text[k] < '0' || text[k] > '9') {
        ++res->log_damaged;
        return;
      }
      i = i * 10 + (text[k] - '0');
    }
    if (i >= lines ||
        text.find_first_not_of(kFill[i % 62], 14) != std::string_view::npos) {
      ++res->log_damaged;
      return;
    }
    uint8_t& c = count[static_cast<size_t>(i)];
    if (c > 0) ++res->log_dup;
    if (c < 255) ++c;
  };
  const std::vector<std::string> files = peer.LogFiles();
  for (const auto& f : files) {
    std::error_code ec;
    res->log_disk_bytes += static_cast<int64_t>(fs::file_size(f, ec));
    ++res->log_files;
  }
  auto each = [&](std::string_view line) {
    if (!records) return check(line);
    // relsupd: the writer's records, decoded as the daemon reads them.
    relsupd::Result<relsupd::LogRecord> r = relsupd::DecodeLogRecord(line, "bench");
    if (!r.ok() || r->partial) {
      ++res->log_damaged;
      return;
    }
    if (r->process != "log.1" || r->stream != "out") {
      ++res->log_other;  // another process's record (none expected)
      return;
    }
    check(r->text);
  };
  if (!ForEachLine(files, each))
    res->log_timeout += (res->log_timeout.empty() ? "" : "; ") +
                        std::string("a log file could not be read");
  res->log_lost = std::count(count.begin(), count.end(), uint8_t{0});
}

}  // namespace

// The log phase (see phases.h).
void MeasureLog(Peer& peer, HelloSocket& hello, const Options& o,
                PeerResult* res) {
  while (hello.Receive(0)) {
  }
  res->log_settings = peer.LogSettings();
  const int64_t lines = o.LogLines();
  const size_t line_bytes = static_cast<size_t>(o.log_line_bytes);
  std::string error;
  if (!peer.StartLogWriter(lines, o.log_line_bytes, &error)) {
    res->log_na = error;
    peer.StopPhase();
    return;
  }
  std::optional<ChildHello> start = WaitLogStart(hello);
  if (!start) {
    res->log_na = g_interrupted.load() ? "interrupted"
                                       : "the writer did not start within 60 s";
    peer.StopPhase();
    return;
  }
  const pid_t writer = start->pid;
  const pid_t root = peer.Root();
  const auto cpu_before = TreeCpu(root, {writer});
  const auto wait_before = TreeWait(root, {writer});
  const int64_t t0 = start->monotonic_ns;
  int64_t done_ns = -1, last_ns = -1;
  WaitLastLine(peer, hello, o, t0, lines, res, &done_ns, &last_ns);
  const auto cpu_after = TreeCpu(root, {writer});
  const auto wait_after = TreeWait(root, {writer});
  if (done_ns < 0)
    while (auto h = hello.Receive(last_ns >= 0 ? 1000 : 0))
      if (std::strcmp(h->id, "log.done") == 0) {
        done_ns = h->monotonic_ns;
        break;
      }
  if (last_ns >= 0) {
    res->log_last_s = static_cast<double>(last_ns - t0) / 1e9;
    res->log_mbps =
        static_cast<double>(o.LogPayloadBytes()) / 1e6 / res->log_last_s;
    res->log_sup_cpu_s =
        static_cast<double>(
            CpuUsed(cpu_before, cpu_after, true, &res->log_sup_procs)) /
        1e9;
    res->log_sup_wait_s =
        static_cast<double>(CpuUsed(wait_before, wait_after, true)) / 1e9;
  }
  if (done_ns >= 0) res->log_writer_s = static_cast<double>(done_ns - t0) / 1e9;
  if (g_interrupted.load()) {
    res->log_na = "interrupted";
    peer.StopPhase();
    return;
  }

  CheckLines(peer, lines, line_bytes, res);
  peer.StopPhase();
}

}  // namespace relsupd::bench::supervise
